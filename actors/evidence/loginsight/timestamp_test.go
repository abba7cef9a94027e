package loginsight

import (
	"strings"
	"testing"
	"time"
)

func TestDetectTimestamp(t *testing.T) {
	ref := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		line string
		ref  time.Time // zero: ref above
		want string    // RFC3339Nano in UTC; "" = no timestamp
		span string    // the text the span covers
	}{
		{"rfc3339 Z", "2024-03-05T10:11:12Z level=info msg=x", time.Time{}, "2024-03-05T10:11:12Z", "2024-03-05T10:11:12Z"},
		{"rfc3339 offset+fraction", "2024-03-05T10:11:12.123456+02:00 boot", time.Time{}, "2024-03-05T08:11:12.123456Z", "2024-03-05T10:11:12.123456+02:00"},
		{"iso space no zone", "2024-03-05 10:11:12 INFO started", time.Time{}, "2024-03-05T10:11:12Z", "2024-03-05 10:11:12"},
		{"log4j comma millis", "2015-07-29 17:41:44,747 - INFO  [main] - up", time.Time{}, "2015-07-29T17:41:44.747Z", "2015-07-29 17:41:44,747"},
		{"slashes (Go log, nginx error)", "2009/11/10 23:00:00 [error] 7#0: open() failed", time.Time{}, "2009-11-10T23:00:00Z", "2009/11/10 23:00:00"},
		{"spaced numeric zone", "2024-03-05 10:11:12 +0100 x", time.Time{}, "2024-03-05T09:11:12Z", "2024-03-05 10:11:12 +0100"},
		{"compact zone", "2024-03-05T10:11:12-0700 x", time.Time{}, "2024-03-05T17:11:12Z", "2024-03-05T10:11:12-0700"},
		{"bracketed iso", "[2024-03-05 10:11:12.5] worker", time.Time{}, "2024-03-05T10:11:12.5Z", "[2024-03-05 10:11:12.5]"},
		{"not at start", "host1 2024-03-05T10:11:12Z x", time.Time{}, "2024-03-05T10:11:12Z", "2024-03-05T10:11:12Z"},
		{"syslog", "Jan  2 15:04:05 host app[1]: x", time.Time{}, "2024-01-02T15:04:05Z", "Jan  2 15:04:05"},
		{"syslog two-digit day", "Dec 10 06:55:46 LabSZ sshd[24200]: x", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "2024-12-10T06:55:46Z", "Dec 10 06:55:46"},
		{"syslog same year when not in the future", "Dec 10 06:55:46 LabSZ sshd[24200]: x", time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC), "2024-12-10T06:55:46Z", "Dec 10 06:55:46"},
		{"journald short-precise", "Mar 05 10:11:12.345678 host kernel: x", time.Time{}, "2024-03-05T10:11:12.345678Z", "Mar 05 10:11:12.345678"},
		{"syslog 29 Feb in a common year", "Feb 29 10:00:00 h x", time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), "2020-02-29T10:00:00Z", "Feb 29 10:00:00"},
		{"apache access", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326`, time.Time{}, "2000-10-10T20:55:36Z", "[10/Oct/2000:13:55:36 -0700]"},
		{"ctime (apache error)", "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] x", time.Time{}, "2000-10-11T14:32:52Z", "[Wed Oct 11 14:32:52 2000]"},
		{"klog", "I0102 15:04:05.123456    1234 main.go:10] msg", time.Time{}, "2024-01-02T15:04:05.123456Z", "I0102 15:04:05.123456"},
		{"hdfs yymmdd", "081109 203615 148 INFO dfs.DataNode: x", time.Time{}, "2008-11-09T20:36:15Z", "081109 203615"},
		{"json epoch seconds", `{"ts":1700000000.5,"level":"info"}`, time.Time{}, "2023-11-14T22:13:20.5Z", "1700000000.5"},
		{"json epoch millis", `{"time":1700000000123,"msg":"x"}`, time.Time{}, "2023-11-14T22:13:20.123Z", "1700000000123"},
		{"json @timestamp string", `{"@timestamp":"2024-03-05T10:11:12.000Z","message":"x"}`, time.Time{}, "2024-03-05T10:11:12Z", "2024-03-05T10:11:12.000Z"},
		{"json timestamp preferred over time", `{"time":"x","timestamp":"2024-03-05 10:11:12"}`, time.Time{}, "2024-03-05T10:11:12Z", "2024-03-05 10:11:12"},
		{"two timestamps: leftmost wins", "2024-03-05T10:11:12Z job scheduled for 2024-03-06T00:00:00Z", time.Time{}, "2024-03-05T10:11:12Z", "2024-03-05T10:11:12Z"},
		{"two formats: leftmost wins", "Mar  5 10:11:12 host app: replay of 2024-03-01T09:00:00Z", time.Time{}, "2024-03-05T10:11:12Z", "Mar  5 10:11:12"},
		{"zone-less uses ref location", "2024-03-05 10:11:12 x", time.Date(2024, 6, 1, 0, 0, 0, 0, time.FixedZone("X", 3600)), "2024-03-05T09:11:12Z", "2024-03-05 10:11:12"},

		{"number that looks like a date", "processed 20240305 101112 records", time.Time{}, "", ""},
		{"six digit numbers at start, invalid month", "123456 654321 bytes copied", time.Time{}, "", ""},
		{"invalid month", "order 2024-13-05 10:11:12 placed", time.Time{}, "", ""},
		{"30 February", "2024-02-30 10:11:12 x", time.Time{}, "", ""},
		{"date without time", "2024-03-05 started", time.Time{}, "", ""},
		{"placeholder year", "0000-00-00 00:00:00 never", time.Time{}, "", ""},
		{"year one", "0001/01/01 00:00:00 zero value", time.Time{}, "", ""},
		{"five-digit year", "12024-03-05 10:11:12 x", time.Time{}, "", ""},
		{"version and clock-ish", "v1.2.3 at 10:11 ok", time.Time{}, "", ""},
		{"json small time is a duration", `{"time": 12, "msg":"x"}`, time.Time{}, "", ""},
		{"month word inside a word", "Janitor 2 15:04:05 x", time.Time{}, "", ""},
		{"empty", "", time.Time{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.ref
			if r.IsZero() {
				r = ref
			}
			got, span, ok := DetectTimestamp(tt.line, r)
			if tt.want == "" {
				if ok {
					t.Fatalf("found %v at %v in %q, want none", got, span, tt.line)
				}
				return
			}
			if !ok {
				t.Fatalf("no timestamp in %q", tt.line)
			}
			if g := got.UTC().Format(time.RFC3339Nano); g != tt.want {
				t.Errorf("time = %s, want %s", g, tt.want)
			}
			if s := tt.line[span[0]:span[1]]; s != tt.span {
				t.Errorf("span covers %q, want %q", s, tt.span)
			}
		})
	}
}

func TestTimestampDetectorLearnsFormat(t *testing.T) {
	ref := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	d := NewTimestampDetector(ref)
	for i := range 100 {
		line := "081109 2036" + string(rune('1'+i%5)) + "5 148 INFO dfs.DataNode: block"
		if _, _, ok := d.Detect(line); !ok {
			t.Fatalf("line %d: no timestamp", i)
		}
	}
	if d.FullScans != 1 || d.FastHits != 99 || d.Format() != "yymmdd-hhmmss" {
		t.Fatalf("full scans %d, fast hits %d, format %s; want 1, 99, yymmdd-hhmmss", d.FullScans, d.FastHits, d.Format())
	}
	// A line in another layout still resolves, through the full set, and
	// becomes the new fast path.
	ts, _, ok := d.Detect("2024-03-05T10:11:12Z switched")
	if !ok || ts.Format(time.RFC3339) != "2024-03-05T10:11:12Z" {
		t.Fatalf("got %v %v", ts, ok)
	}
	if d.Format() != "iso8601" {
		t.Fatalf("format %s after switch", d.Format())
	}
	// The fast path must not accept a false hit at the learned offset.
	if _, _, ok := d.Detect("no time here at all"); ok {
		t.Fatal("timestamp found in a line without one")
	}
}

// The fast path and the full search agree on every line.
func TestTimestampDetectorMatchesFullSearch(t *testing.T) {
	ref := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	lines := []string{
		"2024-03-05 10:11:12,001 INFO a",
		"2024-03-05 10:11:13,002 WARN b",
		"Mar  5 10:11:12 host app: c",
		"2024-03-05 10:11:14,003 ERROR d",
		"   at com.example.Foo(Foo.java:1)",
		"[10/Oct/2000:13:55:36 -0700] e",
		"2024-03-05 10:11:15,004 INFO f",
	}
	d := NewTimestampDetector(ref)
	for _, l := range lines {
		t1, s1, ok1 := d.Detect(l)
		t2, s2, ok2 := DetectTimestamp(l, ref)
		if ok1 != ok2 || !t1.Equal(t2) || s1 != s2 {
			t.Errorf("%q: detector %v %v %v, full %v %v %v", l, t1, s1, ok1, t2, s2, ok2)
		}
	}
}

func FuzzDetectTimestamp(f *testing.F) {
	for _, s := range []string{
		"2024-03-05T10:11:12.123+02:00 x", "Jan  2 15:04:05 h", "[10/Oct/2000:13:55:36 -0700]",
		"I0102 15:04:05.123456", "081109 203615 1", `{"ts":1700000000123}`, `{"@timestamp":"2024-03-05T10:11:12Z"}`,
		"[Wed Oct 11 14:32:52 2000]", "2024/03/05 10:11:12 Z", "Feb 29 23:59:60.999999999",
	} {
		f.Add(s)
	}
	ref := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		ts, span, ok := DetectTimestamp(line, ref)
		if !ok {
			return
		}
		if span[0] < 0 || span[0] >= span[1] || span[1] > len(line) {
			t.Fatalf("span %v out of %d bytes", span, len(line))
		}
		if ts.IsZero() {
			t.Fatal("ok with a zero time")
		}
		d := NewTimestampDetector(ref)
		ts2, span2, ok2 := d.Detect(line)
		if !ok2 || !ts2.Equal(ts) || span2 != span {
			t.Fatalf("detector disagrees: %v %v %v vs %v %v", ts2, span2, ok2, ts, span)
		}
	})
}

// A long pathological line costs linear time: the search window is fixed.
func TestDetectTimestampLongLine(t *testing.T) {
	for _, unit := range []string{"1", "2024-", "Jan ", "0000-00-00 ", `{"ts":`, "[", "12:"} {
		line := strings.Repeat(unit, (1<<20)/len(unit))
		DetectTimestamp(line, time.Time{})
		d := NewTimestampDetector(time.Time{})
		d.Detect(line)
		d.Detect(line)
	}
}
