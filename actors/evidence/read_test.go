package evidence

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// numbered returns n lines "line 1" … "line n", newline-terminated.
func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

func TestReadRanges(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	f := h.put(t, caseA, "n.txt", numbered(100))
	if f.Lines != 100 {
		t.Fatalf("lines = %d", f.Lines)
	}
	tests := []struct {
		from, to         int
		wantFrom, wantTo int
		first, last      string
	}{
		{1, 3, 1, 3, "line 1", "line 3"},
		{98, 200, 98, 100, "line 98", "line 100"}, // clamped to the end
		{-5, 2, 1, 2, "line 1", "line 2"},         // clamped to the start
		{50, 0, 50, 100, "line 50", "line 100"},   // 0 = to the end
		{500, 600, 100, 100, "line 100", "line 100"},
		{10, 5, 10, 10, "line 10", "line 10"}, // reversed: one line
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%d", tt.from, tt.to), func(t *testing.T) {
			res, err := h.Read(ctx, caseA, f.FileID, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(res.Text, "\n")
			if res.FromLine != tt.wantFrom || res.ToLine != tt.wantTo || res.Truncated || res.TotalLines != 100 ||
				lines[0] != tt.first || lines[len(lines)-1] != tt.last || len(lines) != tt.wantTo-tt.wantFrom+1 {
				t.Fatalf("Read(%d, %d) = from %d to %d truncated %v, %d lines %q…%q", tt.from, tt.to,
					res.FromLine, res.ToLine, res.Truncated, len(lines), lines[0], lines[len(lines)-1])
			}
		})
	}
}

func TestReadByteCap(t *testing.T) {
	h := newHarness(t, Config{MaxReadBytes: 1024})
	ctx := context.Background()
	f := h.put(t, caseA, "n.txt", numbered(1000))
	res, err := h.Read(ctx, caseA, f.FileID, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Text) > 1024 || !res.Truncated || res.ToLine >= 1000 || res.ToLine < 100 {
		t.Fatalf("len %d truncated %v to %d", len(res.Text), res.Truncated, res.ToLine)
	}
	if !strings.HasSuffix(res.Text, fmt.Sprintf("line %d", res.ToLine)) {
		t.Fatalf("text does not end with its last whole line %d: …%q", res.ToLine, res.Text[len(res.Text)-20:])
	}

	// One line longer than the cap is cut on a rune boundary.
	long := strings.Repeat("é", 5000) + "\nnext\n"
	g := h.put(t, caseA, "long.txt", long)
	res, err = h.Read(ctx, caseA, g.FileID, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Text) > 1024 || len(res.Text) < 1020 || !utf8.ValidString(res.Text) || !res.Truncated || res.ToLine != 1 {
		t.Fatalf("long line: len %d valid %v truncated %v to %d", len(res.Text), utf8.ValidString(res.Text), res.Truncated, res.ToLine)
	}
	res, err = h.Read(ctx, caseA, g.FileID, 2, 2)
	if err != nil || res.Text != "next" || res.Truncated {
		t.Fatalf("line after a long one: %+v, %v", res, err)
	}
}

func TestReadBytes(t *testing.T) {
	h := newHarness(t, Config{MaxReadBytes: 1024})
	ctx := context.Background()
	body := numbered(1000)
	f := h.put(t, caseA, "n.txt", body)
	off := int64(strings.Index(body, "line 10\n"))
	res, err := h.ReadBytes(ctx, caseA, f.FileID, off, 16)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "line 10\nline 11\n" || res.FromLine != 10 || res.ToLine != 11 || res.Truncated {
		t.Fatalf("ReadBytes = %+v", res)
	}
	res, err = h.ReadBytes(ctx, caseA, f.FileID, 0, 0) // as much as allowed
	if err != nil || len(res.Text) != 1024 || !res.Truncated {
		t.Fatalf("capped ReadBytes: len %d truncated %v err %v", len(res.Text), res.Truncated, err)
	}
	res, err = h.ReadBytes(ctx, caseA, f.FileID, int64(len(body))+10, 10)
	if err != nil || res.Text != "" || res.Truncated {
		t.Fatalf("past the end: %+v, %v", res, err)
	}
	if _, err := h.ReadBytes(ctx, caseA, f.FileID, -1, 10); err == nil {
		t.Fatal("negative offset accepted")
	}
}
