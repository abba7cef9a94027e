package loginsight

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

var testRef = time.Date(2025, 11, 25, 0, 0, 0, 0, time.UTC)

func TestAnalyzeLoghub(t *testing.T) {
	tests := []struct {
		name        string
		format      string
		start, end  string
		ips         int
		minTemplate int
		levels      map[Level]int64
	}{
		{"HDFS", "yymmdd-hhmmss", "2008-11-09T20:36:15Z", "2008-11-11T10:20:17Z", 202, 14,
			map[Level]int64{LevelInfo: 1920, LevelWarn: 80}},
		{"Zookeeper", "iso8601", "2015-07-29T17:41:44.747Z", "2015-08-25T11:26:28.145Z", 32, 40,
			map[Level]int64{LevelInfo: 669, LevelWarn: 1318, LevelError: 13}},
		// year-less syslog: the year comes from the reference (2025-11-25)
		// stepped back because December 2025 would be in the future.
		{"OpenSSH", "syslog", "2024-12-10T06:55:46Z", "2024-12-10T11:04:45Z", 30, 27,
			map[Level]int64{LevelUnknown: 1952, LevelError: 47, LevelFatal: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := loghubFile(t, tt.name, ".log")
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Analyze(bytes.NewReader(raw), Options{Reference: testRef})
			if err != nil {
				t.Fatal(err)
			}
			if r.Lines != 2000 || r.Events != 2000 || r.Bytes != int64(len(raw)) || r.TimestampedEvents != 2000 {
				t.Errorf("lines %d events %d bytes %d/%d timestamped %d", r.Lines, r.Events, r.Bytes, len(raw), r.TimestampedEvents)
			}
			if r.TimestampFormat != tt.format {
				t.Errorf("format %s, want %s", r.TimestampFormat, tt.format)
			}
			if s, e := r.Start.UTC().Format(time.RFC3339Nano), r.End.UTC().Format(time.RFC3339Nano); s != tt.start || e != tt.end {
				t.Errorf("range %s → %s, want %s → %s", s, e, tt.start, tt.end)
			}
			if r.UniqueIPs != tt.ips || r.UniqueIPsCapped {
				t.Errorf("unique IPs %d (capped %v), want %d", r.UniqueIPs, r.UniqueIPsCapped, tt.ips)
			}
			if fmt.Sprint(r.Levels) != fmt.Sprint(tt.levels) {
				t.Errorf("levels %v, want %v", r.Levels, tt.levels)
			}
			if r.TemplatesTotal < tt.minTemplate || r.TemplatesTotal > 3*tt.minTemplate {
				t.Errorf("%d templates", r.TemplatesTotal)
			}
			sum := 0
			for _, c := range r.Templates {
				sum += c.Count
			}
			if sum != 2000 {
				t.Errorf("template counts sum to %d", sum)
			}
		})
	}
}

// A planted burst is found, dated and attributed to its template.
func TestAnalyzeBurst(t *testing.T) {
	var b strings.Builder
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	burstAt := t0.Add(37 * time.Minute)
	for m := range 60 {
		minute := t0.Add(time.Duration(m) * time.Minute)
		for i := range 10 {
			fmt.Fprintf(&b, "%s INFO request %d served in %dms\n", minute.Add(time.Duration(i)*5*time.Second).Format("2006-01-02 15:04:05"), m*10+i, i)
		}
		if minute.Equal(burstAt) {
			for i := range 300 {
				fmt.Fprintf(&b, "%s ERROR db timeout after %dms on shard %d\n", minute.Add(time.Duration(i)*100*time.Millisecond).Format("2006-01-02 15:04:05.000"), 1000+i, i%4)
			}
		}
	}
	r, err := Analyze(strings.NewReader(b.String()), Options{Reference: testRef})
	if err != nil {
		t.Fatal(err)
	}
	if r.BurstsTotal != 1 || len(r.Bursts) != 1 {
		t.Fatalf("bursts %d: %+v", r.BurstsTotal, r.Bursts)
	}
	bs := r.Bursts[0]
	if !bs.Start.Equal(burstAt) || bs.Lines != 310 || bs.Width != time.Minute || r.MedianPerBucket != 10 {
		t.Fatalf("burst %+v, median %v", bs, r.MedianPerBucket)
	}
	if len(bs.Top) == 0 || bs.Top[0].Template != "ERROR db timeout after <*> on shard <*>" || bs.Top[0].Count != 300 {
		t.Fatalf("burst top %+v", bs.Top)
	}
	if r.ErrorTemplatesTotal != 1 || r.ErrorTemplates[0].Count != 300 {
		t.Fatalf("error templates %+v", r.ErrorTemplates)
	}
	// below the minimum count a spike is no burst
	r, err = Analyze(strings.NewReader(b.String()), Options{Reference: testRef, BurstMinLines: 400})
	if err != nil || r.BurstsTotal != 0 {
		t.Fatalf("with BurstMinLines 400: %d bursts, %v", r.BurstsTotal, err)
	}
}

// The synthetic generator's planted bursts are all found.
func TestAnalyzeSyntheticBursts(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	s := newSynth(seed)
	var buf bytes.Buffer
	if err := s.writeTo(&buf, 4<<20); err != nil {
		t.Fatal(err)
	}
	r, err := Analyze(&buf, Options{Reference: time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines != s.lines {
		t.Errorf("lines %d, generator wrote %d", r.Lines, s.lines)
	}
	found := map[time.Time]bool{}
	for _, b := range r.Bursts {
		found[b.Start.UTC()] = true
	}
	if len(s.planted) == 0 || r.BurstsTotal != len(s.planted) {
		t.Fatalf("planted %d bursts, found %d", len(s.planted), r.BurstsTotal)
	}
	for _, p := range s.planted[:min(len(s.planted), len(r.Bursts))] {
		if !found[p] {
			t.Errorf("planted burst at %s not found (found %v)", p, found)
		}
	}
	if r.MultilineEvents == 0 || r.ContinuationLines != 6*r.MultilineEvents {
		t.Errorf("stack traces: %d events, %d lines", r.MultilineEvents, r.ContinuationLines)
	}
}

func TestAnalyzeStackTraces(t *testing.T) {
	in := strings.Join([]string{
		"2024-05-01 10:00:00,000 INFO app started",
		"2024-05-01 10:00:01,000 ERROR request failed",
		"java.lang.IllegalStateException: boom",
		"\tat com.example.Foo.bar(Foo.java:10)",
		"\tat com.example.Foo.main(Foo.java:3)",
		"Caused by: java.io.IOException: disk",
		"\t... 2 more",
		"2024-05-01 10:00:02,000 something happened",
		"Traceback (most recent call last):",
		`  File "x.py", line 1, in <module>`,
		"ValueError: bad",
		"",
		"2024-05-01 10:00:03,000 INFO done",
	}, "\n")
	r, err := Analyze(strings.NewReader(in), Options{Reference: testRef})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines != 13 || r.Events != 4 || r.ContinuationLines != 8 || r.MultilineEvents != 2 || r.BlankLines != 1 {
		t.Fatalf("lines %d events %d continuation %d multiline %d blank %d", r.Lines, r.Events, r.ContinuationLines, r.MultilineEvents, r.BlankLines)
	}
	// the level-less record followed by a traceback counts as an error
	if r.Levels[LevelError] != 2 || r.Levels[LevelInfo] != 2 {
		t.Fatalf("levels %v", r.Levels)
	}
	if len(r.TraceTemplates) != 2 {
		t.Fatalf("trace templates %+v", r.TraceTemplates)
	}
}

func TestAnalyzeInputErrors(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3) // control bytes and high bytes, no newline structure
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrEmpty},
		{"blank lines", "\n  \n\t\n", ErrEmpty},
		{"png", png, ErrBinary},
		{"garbage bytes", string(garbage), ErrBinary},
		{"text then only NUL lines", "\x00a\n\x00b\n", ErrBinary},
	}
	for _, tt := range tests {
		r, err := Analyze(strings.NewReader(tt.in), Options{})
		if !errors.Is(err, tt.want) || r != nil {
			t.Errorf("%s: report %v err %v, want %v", tt.name, r != nil, err, tt.want)
		}
	}
	// NUL lines inside a text log are counted, not mined
	r, err := Analyze(strings.NewReader(strings.Repeat("ok line 1\n", 500)+"bad\x00line\nok line 2\n"), Options{})
	if err != nil || r.BinaryLines != 1 || r.Events != 501 {
		t.Fatalf("binary lines %+v, %v", r, err)
	}
	// a read error is reported with its line
	_, err = Analyze(io.MultiReader(strings.NewReader("a\nb\n"), errReader{}), Options{})
	if err == nil || !strings.Contains(err.Error(), "line 3") || !errors.Is(err, errBroken) {
		t.Fatalf("read error: %v", err)
	}
}

var errBroken = errors.New("disk on fire")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// Random printable garbage is text: it is analysed, not rejected.
func TestAnalyzeRandomText(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(32 + rng.IntN(95))
		if rng.IntN(60) == 0 {
			b[i] = '\n'
		}
	}
	r, err := Analyze(bytes.NewReader(b), Options{Miner: MinerConfig{MaxClusters: 500}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines == 0 || r.Bytes != int64(len(b)) || r.TemplatesTotal > 500 {
		t.Fatalf("lines %d bytes %d templates %d", r.Lines, r.Bytes, r.TemplatesTotal)
	}
}

func TestAnalyzeTruncatesLongLines(t *testing.T) {
	long := strings.Repeat("x", 1000)
	in := "2024-05-01 10:00:00 INFO short\n2024-05-01 10:00:01 INFO " + long + "\n2024-05-01 10:00:02 INFO tail"
	r, err := Analyze(strings.NewReader(in), Options{MaxLineBytes: 100, Reference: testRef})
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines != 3 || r.TruncatedLines != 1 || r.Bytes != int64(len(in)) || r.Events != 3 {
		t.Fatalf("lines %d truncated %d bytes %d/%d events %d", r.Lines, r.TruncatedLines, r.Bytes, len(in), r.Events)
	}
	for _, c := range r.Templates {
		if len(c.Example) > 100 {
			t.Fatalf("example of %d bytes survived a 100-byte line cap", len(c.Example))
		}
	}
}

func TestAnalyzeIPs(t *testing.T) {
	in := "from 10.0.0.1 to 10.0.0.2:8080\n" +
		"again 10.0.0.1 and [2001:db8::1]:443 and fe80::1\n" +
		"not ips: 1.2.3.4.5 v1.2.3 300.1.1.1 17:41:44 abc1.2.3.4\n" +
		"host 5.36.59.76.dynamic-dsl-ip.example\n"
	r, err := Analyze(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "[{10.0.0.1 2} {10.0.0.2 1} {2001:db8::1 1} {5.36.59.76 1} {fe80::1 1}]"
	if r.UniqueIPs != 5 || fmt.Sprint(r.TopIPs) != want {
		t.Fatalf("unique %d top %v, want 5 %s", r.UniqueIPs, r.TopIPs, want)
	}
	r, _ = Analyze(strings.NewReader(in), Options{MaxIPs: 2})
	if r.UniqueIPs != 2 || !r.UniqueIPsCapped {
		t.Fatalf("capped: %d %v", r.UniqueIPs, r.UniqueIPsCapped)
	}
}

func TestAnalyzeJSONLines(t *testing.T) {
	in := `{"ts":"2024-05-01T10:00:00Z","level":"info","msg":"user 17 logged in"}
{"ts":"2024-05-01T10:00:05Z","level":"error","msg":"payment 99 failed","code":502}
{"ts":"2024-05-01T10:00:09Z","level":"info","msg":"user 18 logged in"}
`
	r, err := Analyze(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.TimestampFormat != "json" || r.Levels[LevelError] != 1 || r.End.Sub(r.Start) != 9*time.Second {
		t.Fatalf("%+v", r)
	}
	if r.Templates[0].Template != "user <*> logged in" || r.Templates[0].Count != 2 {
		t.Fatalf("templates %+v", r.Templates)
	}
}

// Memory stays bounded by the caps: a histogram spanning many years
// coarsens instead of growing.
func TestAnalyzeCoarsensBuckets(t *testing.T) {
	var b strings.Builder
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3000 {
		fmt.Fprintf(&b, "%s INFO tick %d\n", t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), i)
	}
	r, err := Analyze(strings.NewReader(b.String()), Options{MaxBuckets: 100})
	if err != nil {
		t.Fatal(err)
	}
	if r.BucketWidth < 30*time.Hour {
		t.Fatalf("bucket width %v for 3000 hours in 100 buckets", r.BucketWidth)
	}
}

// A 1 MB pathological line goes through every scanner in linear time.
func TestAnalyzePathologicalLines(t *testing.T) {
	for _, unit := range []string{"1", "1.", "1:", "a:", "::", "[", "{\"ts\":", "level=", "Jan ", "0x", "=", "<*>", " ", "\t "} {
		line := strings.Repeat(unit, (1<<20)/len(unit))
		in := "2024-05-01 10:00:00 INFO start\n" + line + "\n" + line + "\n"
		r, err := Analyze(strings.NewReader(in), Options{MaxLineBytes: 2 << 20, Reference: testRef})
		if err != nil && !errors.Is(err, ErrEmpty) {
			t.Fatalf("unit %q: %v", unit, err)
		}
		if r != nil && r.Lines != 3 {
			t.Fatalf("unit %q: %d lines", unit, r.Lines)
		}
	}
}

func FuzzAnalyze(f *testing.F) {
	f.Add([]byte("2024-05-01 10:00:00 INFO a 1\n\tat x\nJan  2 15:04:05 h p[1]: error: b\n"))
	f.Add([]byte(`{"ts":1700000000,"level":"warn","msg":"m"}` + "\n\x00\n"))
	f.Add([]byte("\xff\xfe\x00\x01"))
	f.Add([]byte("081109 203615 148 INFO x 10.0.0.1:1\n081109 203616 148 INFO x 10.0.0.2:1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Analyze(bytes.NewReader(data), Options{MaxLineBytes: 128, Miner: MinerConfig{MaxClusters: 16}, MaxIPs: 4, MaxBuckets: 8})
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrBinary) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if r.Bytes != int64(len(data)) || r.Events > r.Lines || r.Events == 0 || r.TemplatesTotal > 16 || r.UniqueIPs > 4 {
			t.Fatalf("report %+v for %d bytes", r, len(data))
		}
		var n int64
		for _, c := range r.Levels {
			n += c
		}
		if n != r.Events {
			t.Fatalf("levels sum %d, events %d", n, r.Events)
		}
		if d := r.Digest(300); len(d) > 300 {
			t.Fatalf("digest %d bytes", len(d))
		}
	})
}
