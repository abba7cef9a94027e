package redact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/internal/loghub"
)

// realTexts returns text that holds no secret but much that looks like one
// to a careless detector: the loghub samples shared with the other
// packages (HDFS, OpenSSH with its "Failed password for …" lines,
// Zookeeper) and the repository's runbooks. Keys are file names.
func realTexts(tb testing.TB) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, name := range []string{"HDFS", "OpenSSH", "Zookeeper"} {
		p := loghub.File(tb, filepath.Join(name, name+"_2k.log"))
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[name+"_2k.log"] = string(b)
	}
	runbooks, err := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "kb", "runbooks", "*.md"))
	if err != nil || len(runbooks) == 0 {
		tb.Fatalf("runbooks not found: %v", err)
	}
	for _, p := range runbooks {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}

// TestDetectLeavesRealLogsAlone runs the detector over real logs and the
// runbooks: any span there is a false positive that would hide a
// diagnostic fact from the model.
func TestDetectLeavesRealLogsAlone(t *testing.T) {
	for name, text := range realTexts(t) {
		for _, s := range Detect(text) {
			ls := strings.LastIndexByte(text[:s.Start], '\n') + 1
			t.Errorf("%s: %s span %q in line %q", name, s.Kind, text[s.Start:s.End], text[ls:lineEnd(text, s.Start)])
		}
	}
}

func BenchmarkDetectRealLogs(b *testing.B) {
	texts := realTexts(b)
	var sb strings.Builder
	for _, name := range []string{"HDFS_2k.log", "OpenSSH_2k.log", "Zookeeper_2k.log"} {
		sb.WriteString(texts[name])
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(text)
	}
}
