package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	loghubdata "github.com/faultmaven/faultmaven/internal/loghub"
)

func loghub(t *testing.T, rel string) string { return loghubdata.File(t, rel) }

func TestLogsEval(t *testing.T) {
	out, _, err := runCmd(t, env(nil), "", "logs", "eval", loghub(t, "HDFS/HDFS_2k.log_structured.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "grouping accuracy=") || !strings.Contains(out, "expected=14") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestLogsAnalyze(t *testing.T) {
	out, _, err := runCmd(t, env(nil), "", "logs", "analyze", "--budget", "2000", loghub(t, "OpenSSH/OpenSSH_2k.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 || len(out) > 2100 || !strings.Contains(out, "2,000") && !strings.Contains(out, "2000") {
		t.Fatalf("digest (%d bytes):\n%s", len(out), out)
	}
}

func TestLogsErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.log")
	_ = os.WriteFile(empty, nil, 0o600)
	bin := filepath.Join(dir, "bin.log")
	_ = os.WriteFile(bin, []byte("\x00\x01\x02\x03\xff\xfe\x00\x00binary\x00"), 0o600)
	csv := filepath.Join(dir, "x.csv")
	_ = os.WriteFile(csv, []byte("a,b\n1,2\n"), 0o600)
	for _, args := range [][]string{
		{"logs", "analyze", filepath.Join(dir, "missing.log")},
		{"logs", "analyze", empty},
		{"logs", "analyze", bin},
		{"logs", "eval", csv},
		{"logs", "frobnicate"},
	} {
		if _, _, err := runCmd(t, env(nil), "", args...); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

// The logs commands take their flags from FM_ variables too, like every
// other command; a flag on the command line wins, and a bad value names
// its variable.
func TestLogsFlagsFromEnvironment(t *testing.T) {
	log := loghub(t, "OpenSSH/OpenSSH_2k.log")
	out, _, err := runCmd(t, env(map[string]string{"FM_JSON": "true"}), "", "logs", "analyze", log)
	if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Fatalf("FM_JSON=true should print JSON: %v\n%.200s", err, out)
	}
	out, _, err = runCmd(t, env(map[string]string{"FM_BUDGET": "500"}), "", "logs", "analyze", log)
	if err != nil || len(out) == 0 || len(out) > 600 {
		t.Fatalf("FM_BUDGET=500: %v, %d bytes", err, len(out))
	}
	out, _, err = runCmd(t, env(map[string]string{"FM_BUDGET": "500"}), "", "logs", "analyze", "--budget", "3000", log)
	if err != nil || len(out) <= 600 {
		t.Fatalf("--budget 3000 must win over FM_BUDGET=500: %v, %d bytes", err, len(out))
	}
	if _, _, err := runCmd(t, env(map[string]string{"FM_SHOW": "many"}), "", "logs", "eval", loghub(t, "HDFS/HDFS_2k.log_structured.csv")); err == nil || !strings.Contains(err.Error(), "FM_SHOW") {
		t.Fatalf("FM_SHOW=many: %v, want an error naming FM_SHOW", err)
	}
}
