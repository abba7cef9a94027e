package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/persistence"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func runCmd(t *testing.T, getenv func(string) string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return runCmdFor(t, 30*time.Second, getenv, stdin, args...)
}

// runCmdFor is runCmd with a time limit other than 30 s.
func runCmdFor(t *testing.T, limit time.Duration, getenv func(string) string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	err := run(ctx, args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func TestFlagsAndEnvironment(t *testing.T) {
	var cfg serveConfig
	fs := serveFlags(&cfg)
	err := parseFlags(fs, []string{"--case-idle", "2m"}, env(map[string]string{
		"FM_CASE_IDLE": "5m", "FM_ADDR": "127.0.0.1:9999", "FM_CORS_ORIGINS": "chrome-extension://a, https://x.example",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CaseIdle != 2*time.Minute {
		t.Errorf("the command line must win over the environment: %v", cfg.CaseIdle)
	}
	if cfg.Addr != "127.0.0.1:9999" {
		t.Errorf("FM_ADDR ignored: %q", cfg.Addr)
	}
	if len(cfg.CORSOrigins) != 2 || cfg.CORSOrigins[1] != "https://x.example" {
		t.Errorf("list from env: %v", cfg.CORSOrigins)
	}
	fs = serveFlags(&serveConfig{})
	if err := parseFlags(fs, nil, env(map[string]string{"FM_CASE_IDLE": "soon"}), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "FM_CASE_IDLE") {
		t.Errorf("a bad env value must name the variable: %v", err)
	}
}

func TestBadConfigNamesTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "nonsense"}, "--addr"},
		{[]string{"--access-ttl", "1m"}, "--access-ttl"},
		{[]string{"--cors-origins", "*"}, "--cors-origins"},
		{[]string{"--llm-base-url", "http://x/v1/"}, "--llm-model"},
		{[]string{"--turn-sync-wait", "500s"}, "--turn-sync-wait"},
		{[]string{"--context-tokens", "10"}, "--context-tokens"},
		{[]string{"--max-upload", "1"}, "--max-upload"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--pprof-addr", "0.0.0.0:6060"}, "--pprof-addr"},
		{[]string{"--pprof-addr", "6060"}, "--pprof-addr"},
		{[]string{"extra-arg"}, "unexpected argument"},
	} {
		_, _, err := runCmd(t, env(nil), "", append([]string{"serve", "--data", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v should name %q", tc.args, err, tc.want)
		}
	}
}

func TestHelpDocumentsEveryFlagWithItsVariable(t *testing.T) {
	out, _, err := runCmd(t, env(nil), "", "serve", "--help")
	if !errors.Is(err, errHelpShown) {
		t.Fatalf("help: %v", err)
	}
	n := 0
	serveFlags(&serveConfig{}).VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(out, "--"+f.Name+" (env "+envName(f.Name)) {
			t.Errorf("--help lacks --%s with %s", f.Name, envName(f.Name))
		}
	})
	if n < 30 {
		t.Fatalf("only %d flags visited", n)
	}
}

func TestRefusesPublicAddressWithoutAdmin(t *testing.T) {
	data := t.TempDir()
	_, _, err := runCmd(t, env(nil), "", "serve", "--data", data, "--addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "user add") || !strings.Contains(err.Error(), "--admin") {
		t.Fatalf("want a refusal that says how to create the admin, got %v", err)
	}
	// With the admin created, it starts (and stops when the context ends).
	if _, _, err := runCmd(t, env(map[string]string{"FM_PASSWORD": "a-long-password"}), "", "user", "add", "--data", data, "--username", "root", "--admin"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"serve", "--data", data, "--addr", "0.0.0.0:0"}, env(nil), strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("serve with an admin: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "shutdown complete") {
		t.Fatalf("no clean shutdown in the log:\n%s", errb.String())
	}
}

func TestUserAdd(t *testing.T) {
	data := t.TempDir()
	out, _, err := runCmd(t, env(nil), "hunter2-but-longer\n", "user", "add", "--data", data, "--username", "alice", "--admin", "--password-stdin")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "admin") {
		t.Fatalf("user add: %q %v", out, err)
	}
	if _, _, err := runCmd(t, env(nil), "", "user", "add", "--data", data, "--username", "bob"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("missing password: %v", err)
	}
	// The admin flag can never come from the environment.
	out, _, err = runCmd(t, env(map[string]string{"FM_PASSWORD": "a-long-password", "FM_ADMIN": "true"}), "", "user", "add", "--data", data, "--username", "carol")
	if err != nil || strings.Contains(out, "admin") {
		t.Fatalf("FM_ADMIN must not grant admin: %q %v", out, err)
	}
	// Refused clearly while a server holds the data directory.
	st, err := persistence.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, _, err = runCmd(t, env(map[string]string{"FM_PASSWORD": "a-long-password"}), "", "user", "add", "--data", data, "--username", "dave")
	if err == nil || !strings.Contains(err.Error(), "in use by a running faultmaven server") {
		t.Fatalf("locked data dir: %v", err)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	out, _, err := runCmd(t, env(nil), "", "version")
	if err != nil || !strings.HasPrefix(out, "faultmaven ") {
		t.Fatalf("version: %q %v", out, err)
	}
	if _, _, err := runCmd(t, env(nil), "", "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// TestREADMEListsEveryFlag keeps the README's configuration table true.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	serveFlags(&serveConfig{}).VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + envName(f.Name) + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README config table lacks the row for --%s (%s)", f.Name, envName(f.Name))
		}
	})
}

// TestVersionFromBuildInfo: without -ldflags the version and commit come
// from what the toolchain recorded (go install …@v1.2.3, go build in a
// clone); -ldflags values win.
func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name, v, c string
		bi         *debug.BuildInfo
		wantV      string
		wantC      string
	}{
		{"no build info", "dev", "unknown", nil, "dev", "unknown"},
		{"go install at a version", "dev", "unknown", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3", "unknown"},
		{"go build in a clone", "dev", "unknown",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("4b6fb63e0a1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "false")}, "dev", "4b6fb63"},
		{"modified tree", "dev", "unknown",
			&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("4b6fb63e0a1c", "true")}, "dev", "4b6fb63-dirty"},
		{"ldflags win", "v2.0.0", "abc1234",
			&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs("4b6fb63e0a1c", "false")}, "v2.0.0", "abc1234"},
	} {
		if v, c := buildVersion(tc.v, tc.c, tc.bi); v != tc.wantV || c != tc.wantC {
			t.Errorf("%s: got %q %q, want %q %q", tc.name, v, c, tc.wantV, tc.wantC)
		}
	}
}

func TestPathlessLLMBaseURL(t *testing.T) {
	for url, want := range map[string]bool{
		"http://localhost:11434":       true,
		"http://localhost:11434/":      true,
		"http://localhost:11434/v1/":   false,
		"https://api.openai.com/v1":    false,
		"https://openrouter.ai/api/v1": false,
	} {
		if got := pathless(url); got != want {
			t.Errorf("pathless(%q) = %v, want %v", url, got, want)
		}
	}
}
