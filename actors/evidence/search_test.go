package evidence

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSearch(t *testing.T) {
	h := newHarness(t, Config{MaxMatches: 5})
	ctx := context.Background()
	logs := h.put(t, caseA, "app.log", sampleLog4j)
	h.put(t, caseA, "app-again.log", sampleLog4j) // duplicate: searched once
	conf := h.put(t, caseA, "nginx.conf", sampleNginx)
	bin := h.put(t, caseA, "blob.bin", "\x00\x01connection refused\x00")
	h.put(t, caseB, "other.log", sampleLog4j) // another case: never searched

	t.Run("substring ignores case", func(t *testing.T) {
		res, err := h.Search(ctx, caseA, SearchQuery{Pattern: "CONNECTION refused"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Matches) != 2 || res.Truncated || res.TimedOut || res.FilesSearched != 2 {
			t.Fatalf("res = %+v", res)
		}
		m := res.Matches[0]
		if m.FileID != logs.FileID || m.Filename != "app.log" || m.Line != 3 || !strings.Contains(m.Text, "Connection refused") {
			t.Fatalf("match = %+v", m)
		}
		if res.Matches[1].Line != 4 {
			t.Fatalf("second match = %+v", res.Matches[1])
		}
	})
	t.Run("unicode substring", func(t *testing.T) {
		g := h.put(t, caseA, "ru.txt", "Ошибка соединения\nвсё хорошо\n")
		res, err := h.Search(ctx, caseA, SearchQuery{Pattern: "ОШИБКА", FileID: g.FileID})
		if err != nil || len(res.Matches) != 1 || res.Matches[0].Line != 1 {
			t.Fatalf("res = %+v, %v", res, err)
		}
	})
	t.Run("regex", func(t *testing.T) {
		res, err := h.Search(ctx, caseA, SearchQuery{Pattern: `server 10\.0\.0\.\d+:8080;`, Regex: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Matches) != 2 || res.Matches[0].FileID != conf.FileID || res.Matches[0].Line != 10 || res.Matches[1].Line != 11 {
			t.Fatalf("res = %+v", res)
		}
	})
	t.Run("regex is case-sensitive unless asked", func(t *testing.T) {
		res, _ := h.Search(ctx, caseA, SearchQuery{Pattern: `connection REFUSED`, Regex: true})
		if len(res.Matches) != 0 {
			t.Fatalf("res = %+v", res)
		}
		res, _ = h.Search(ctx, caseA, SearchQuery{Pattern: `(?i)connection REFUSED`, Regex: true})
		if len(res.Matches) != 2 {
			t.Fatalf("res = %+v", res)
		}
	})
	t.Run("one file", func(t *testing.T) {
		res, err := h.Search(ctx, caseA, SearchQuery{Pattern: "server", FileID: conf.FileID})
		if err != nil || res.FilesSearched != 1 || len(res.Matches) == 0 {
			t.Fatalf("res = %+v, %v", res, err)
		}
		for _, m := range res.Matches {
			if m.FileID != conf.FileID {
				t.Fatalf("match in another file: %+v", m)
			}
		}
		if _, err := h.Search(ctx, caseA, SearchQuery{Pattern: "refused", FileID: bin.FileID}); !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("binary file: %v", err)
		}
		if _, err := h.Search(ctx, caseB, SearchQuery{Pattern: "server", FileID: conf.FileID}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another case's file: %v", err)
		}
	})
	t.Run("limit", func(t *testing.T) {
		res, err := h.Search(ctx, caseA, SearchQuery{Pattern: "2024-03-01", Limit: 2})
		if err != nil || len(res.Matches) != 2 || !res.Truncated || res.TimedOut {
			t.Fatalf("res = %+v, %v", res, err)
		}
		res, err = h.Search(ctx, caseA, SearchQuery{Pattern: "2024-03-01", Limit: 1000}) // capped by MaxMatches
		if err != nil || len(res.Matches) != 4 || res.Truncated {
			t.Fatalf("res = %+v, %v", res, err)
		}
		res, err = h.Search(ctx, caseA, SearchQuery{Pattern: "e"}) // default: MaxMatches
		if err != nil || len(res.Matches) != 5 || !res.Truncated {
			t.Fatalf("res = %+v, %v", res, err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, q := range []SearchQuery{
			{Pattern: `(unclosed`, Regex: true},
			{Pattern: ""},
			{Pattern: strings.Repeat("a", MaxPatternLen+1)},
			{Pattern: "\xff"},
		} {
			_, err := h.Search(ctx, caseA, q)
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("Search(%.20q) err = %v, want ErrInvalidInput", q.Pattern, err)
			}
		}
		_, err := h.Search(ctx, caseA, SearchQuery{Pattern: `a(b`, Regex: true})
		if err == nil || !strings.Contains(err.Error(), "missing closing )") {
			t.Fatalf("regexp error not passed on: %v", err)
		}
	})
}

// TestSearchPathological: a backtracking-killer pattern over a 5 MB line
// completes (RE2 is linear and lines are searched in their first 64 KiB);
// an expired deadline is reported as TimedOut, not as an error.
func TestSearchPathological(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	f, err := h.Put(ctx, Upload{CaseID: caseA, Filename: "a.txt", Body: &fillReader{n: 5 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Lines != 1 {
		t.Fatalf("lines = %d", f.Lines)
	}
	res, err := h.Search(ctx, caseA, SearchQuery{Pattern: `(a+)+$`, Regex: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimedOut || res.FilesSearched != 1 || len(res.Matches) != 1 || res.Matches[0].Line != 1 || len(res.Matches[0].Text) > maxMatchText+2*len("…") {
		t.Fatalf("res: timed out %v, searched %d, %d matches", res.TimedOut, res.FilesSearched, len(res.Matches))
	}

	// With no time at all, the search reports the timeout and what it had.
	short := newHarness(t, Config{SearchTimeout: 1})
	short.put(t, caseA, "a.log", sampleLog4j)
	res, err = short.Search(ctx, caseA, SearchQuery{Pattern: `(a+)+$`, Regex: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.FilesSearched != 0 || res.Truncated {
		t.Fatalf("res = %+v, want TimedOut", res)
	}

	// A caller that gave up gets its own error, not a timeout.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Search(cctx, caseA, SearchQuery{Pattern: "a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestWindow(t *testing.T) {
	line := []byte(strings.Repeat("x", 2000) + "NEEDLE" + strings.Repeat("y", 2000))
	got := window(line, 2000, 2006)
	if !strings.Contains(got, "NEEDLE") || len(got) > maxMatchText+2*len("…") || !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "…") {
		t.Fatalf("window = %q", got)
	}
	if got := window([]byte("short"), 0, 1); got != "short" {
		t.Fatalf("short window = %q", got)
	}
}
