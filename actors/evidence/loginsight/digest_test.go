package loginsight

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bigReport is a report with many templates, bursts, IPs and traces, so
// every section has more than fits a small budget.
func bigReport(t *testing.T) *Report {
	t.Helper()
	s := newSynth(42)
	s.burstEvery = 20
	var buf bytes.Buffer
	if err := s.writeTo(&buf, 3<<20); err != nil {
		t.Fatal(err)
	}
	letters := func(n int) string { // 0 → "a", 27 → "bb": words without digits
		w := []byte{byte('a' + n%26)}
		for n /= 26; n > 0; n /= 26 {
			w = append(w, byte('a'+n%26))
		}
		return string(w)
	}
	for i := range 300 { // many rare templates
		buf.WriteString("2024-03-20 10:00:00,000 INFO " + letters(i) + " " + letters(i*7+3) + " subsystem reports " + strconv.Itoa(i) + "\n")
	}
	r, err := Analyze(&buf, Options{Reference: time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if r.BurstsTotal < 5 || r.TemplatesTotal < 50 || r.ErrorTemplatesTotal < 3 || r.MultilineEvents == 0 {
		t.Fatalf("report not big enough: %d bursts, %d templates, %d error templates", r.BurstsTotal, r.TemplatesTotal, r.ErrorTemplatesTotal)
	}
	return r
}

var moreTemplates = regexp.MustCompile(`(\d[\d,]*) more templates`)

func TestDigestBudget(t *testing.T) {
	r := bigReport(t)
	full := r.Digest(1 << 30)
	if strings.Contains(full, "_omitted:") {
		t.Fatalf("unlimited digest omits something:\n%s", full)
	}
	for budget := 200; budget <= 20000; budget += 97 {
		d := r.Digest(budget)
		if len(d) > budget {
			t.Fatalf("budget %d: digest is %d bytes", budget, len(d))
		}
		if d == full {
			continue
		}
		lines := strings.Split(strings.TrimRight(d, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "_omitted: ") {
			t.Fatalf("budget %d: something left out but the last line is %q", budget, last)
		}
		// the "N more templates" figure is exact
		if m := moreTemplates.FindStringSubmatch(last); m != nil {
			n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
			shown := 0
			if i := strings.Index(d, "### Most frequent templates"); i >= 0 {
				shown = strings.Count(d[i:], "\n- ")
			}
			if shown+n != r.TemplatesTotal-r.ErrorTemplatesTotal {
				t.Fatalf("budget %d: %d shown + %d omitted != %d non-error templates", budget, shown, n, r.TemplatesTotal-r.ErrorTemplatesTotal)
			}
		}
		if budget >= 400 && !strings.Contains(d, "**Summary:**") {
			t.Fatalf("budget %d: no summary:\n%s", budget, d)
		}
	}
	if d := r.Digest(0); len(d) > DefaultDigestBudget || !strings.Contains(d, "### Errors and warnings") {
		t.Fatalf("default budget digest: %d bytes", len(d))
	}
	for _, tiny := range []int{1, 10, 50, 120} {
		if d := r.Digest(tiny); len(d) > tiny {
			t.Fatalf("budget %d: %d bytes", tiny, len(d))
		}
	}
}

func TestDigestContent(t *testing.T) {
	f, err := os.Open(loghubFile(t, "OpenSSH", ".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Analyze(f, Options{Reference: testRef})
	if err != nil {
		t.Fatal(err)
	}
	d := r.Digest(DefaultDigestBudget)
	for _, want := range []string{
		"**Summary:** 2,000 lines, 2,000 records, 2024-12-10 06:55:46 → 2024-12-10 11:04:45 (4h9m), error rate 2.40% (48 ERROR or worse)",
		"**Levels:** FATAL 1 (0.1%) · ERROR 47 (2.4%) · unknown 1,952 (97.6%)",
		"- 45× `sshd: error: Received disconnect from <*>: No more user authentication methods available. [preauth]` — ERROR 45; first 2024-12-10 09:11:22, last 2024-12-10 11:04:41",
		"### Bursts (",
		"- 413× `sshd: Received disconnect from <*>: Bye Bye [preauth]`",
		"**Unique IPs:** 30; most seen: 183.62.140.253 ×867",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("digest lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(d)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := Thousands(in); got != want {
			t.Errorf("Thousands(%d) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[time.Duration]string{30 * time.Second: "30s", 3 * time.Minute: "3m", 38*time.Hour + 27*time.Minute: "1d14h27m"} {
		if got := shortDur(in); got != want {
			t.Errorf("shortDur(%v) = %s, want %s", in, got, want)
		}
	}
}
