package loginsight

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDetectLevel(t *testing.T) {
	tests := []struct {
		line string
		want Level
	}{
		// header words
		{"2024-03-05 10:11:12 INFO retry after ERROR from upstream", LevelInfo}, // level word in the message
		{"2015-07-29 17:41:44,747 - WARN  [SendWorker:1:Q@688] - leaving", LevelWarn},
		{"081109 203615 148 INFO dfs.DataNode$PacketResponder: x", LevelInfo},
		{"2024-03-05 10:11:12 [main] DEBUG c.e.Foo - x", LevelDebug},
		{"2024-03-05 10:11:12 TRACE x", LevelTrace},
		{"2024-03-05 10:11:12 NOTICE x", LevelNotice},
		{"2024-03-05 10:11:12 CRIT disk failure", LevelCritical},
		{"2024-03-05 10:11:12 FATAL out of memory", LevelFatal},
		{"SEVERE: servlet threw", LevelError},
		{"WARNING: deprecated flag", LevelWarn},
		{"ERROR:root:boom", LevelError}, // Python logging default format
		// key=value and JSON
		{`ts=2024-03-05T10:11:12Z level=warn msg="disk almost full"`, LevelWarn},
		{`t=2024-03-05T10:11:12Z lvl=eror msg="x"`, LevelError},
		{`severity: "Critical" component=db`, LevelCritical},
		{`{"level":"error","msg":"x"}`, LevelError},
		{`{"msg":"level up","level":"debug"}`, LevelDebug},
		{`{"level":50,"msg":"pino error"}`, LevelError},
		{`{"level":30}`, LevelInfo},
		{`{"severity":"WARNING","message":"x"}`, LevelWarn},
		// bracketed, lower case
		{"2009/11/10 23:00:00 [error] 7#0: open() failed", LevelError},
		{"[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] x", LevelError},
		{"<warn> cache cold", LevelWarn},
		// klog and syslog priorities
		{"E0102 15:04:05.123456 1 x.go:1] boom", LevelError},
		{"W0102 15:04:05.123456 1 x.go:1] hmm", LevelWarn},
		{"I0102 15:04:05.123456 1 x.go:1] ok", LevelInfo},
		{"F0102 15:04:05.123456 1 x.go:1] dead", LevelFatal},
		{"<27>Jan  2 15:04:05 host app: x", LevelError},
		{"<30>Jan  2 15:04:05 host app: x", LevelInfo},
		{"<0>Jan  2 15:04:05 host kernel: x", LevelFatal},
		// sshd style "error:" at the start of the message
		{"Dec 10 06:55:46 LabSZ sshd[24200]: error: Received disconnect", LevelError},
		{"Dec 10 11:03:53 LabSZ sshd[1]: fatal: Write failed", LevelFatal},
		{"info: starting", LevelInfo},
		// weak hints only when nothing strong
		{"java.lang.NullPointerException at Foo.bar", LevelError},
		{"Traceback (most recent call last):", LevelError},
		{"INFO Exception handler registered", LevelInfo},
		// not levels
		{"2024-03-05 10:11:12 [main] connection error while reading", LevelUnknown},
		{"Connection error: timeout", LevelUnknown},
		{"user queried INFORMATION_SCHEMA", LevelUnknown},
		{"ERROR_CODE=5 returned", LevelUnknown},
		{"the ERRORS table", LevelUnknown},
		{"E1234 is my id", LevelUnknown},
		{"Got exception while serving blk_1", LevelUnknown},
		{"<999>Jan 2 x", LevelUnknown},
		{"", LevelUnknown},
	}
	for _, tt := range tests {
		if got := DetectLevel(tt.line); got != tt.want {
			t.Errorf("DetectLevel(%q) = %s, want %s", tt.line, got, tt.want)
		}
	}
}

// The header window bounds the scan: a level word far into a long message
// is message text.
func TestDetectLevelWindow(t *testing.T) {
	line := "2024-03-05 10:11:12 " + strings.Repeat("x ", 200) + "ERROR"
	if got := DetectLevel(line); got != LevelUnknown {
		t.Fatalf("got %s for a level word past the header", got)
	}
}

func TestLevelText(t *testing.T) {
	for l := LevelUnknown; l < numLevels; l++ {
		b, err := l.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Fatalf("%s round trip: %s, %v", l, back, err)
		}
	}
	b, _ := json.Marshal(map[Level]int{LevelWarn: 2})
	if string(b) != `{"WARN":2}` {
		t.Fatalf("json %s", b)
	}
	var l Level
	if err := l.UnmarshalText([]byte("bogus")); err == nil {
		t.Fatal("bogus level accepted")
	}
}

func FuzzDetectLevel(f *testing.F) {
	for _, s := range []string{"<27>x", "E0102 15:04:05", `{"level":"warn"}`, `{"lvl": 60}`, "level=", "[error]", "x: error: y", "ERROR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if l := DetectLevel(line); l >= numLevels {
			t.Fatalf("level %d out of range", l)
		}
	})
}

func TestDetectLevelLongLine(t *testing.T) {
	for _, unit := range []string{`{"level":`, "level=", "[", "E", "error: ", "<1"} {
		DetectLevel(strings.Repeat(unit, (1<<20)/len(unit)))
	}
}
