package embed

import (
	"strings"
	"testing"
)

func TestChunkText(t *testing.T) {
	long := strings.Repeat("alpha beta gamma delta ", 20) // 460 bytes
	tests := []struct {
		name     string
		text     string
		size     int
		overlap  int
		headings [][]string
		maxBody  int
	}{
		{"no headings", "just some text\nover lines\n", 100, 20, [][]string{nil}, 100},
		{"heading path", "# Runbook\n\nintro\n\n## Diagnosis\n\nrun curl\n\n### Logs\n\ntail it\n\n## Fix\n\nrestart\n", 100, 20,
			[][]string{{"Runbook"}, {"Runbook", "Diagnosis"}, {"Runbook", "Diagnosis", "Logs"}, {"Runbook", "Fix"}}, 100},
		{"code fence comments are not headings", "# A\n\n```\n# not a heading\nls\n```\n", 100, 20, [][]string{{"A"}}, 100},
		{"empty sections dropped", "# A\n## B\n\nbody\n", 100, 20, [][]string{{"A", "B"}}, 100},
		{"split with overlap", "# Big\n\n" + long, 100, 30, nil, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := chunkText(tc.text, tc.size, tc.overlap)
			if tc.headings != nil {
				if len(cs) != len(tc.headings) {
					t.Fatalf("%d chunks, want %d: %+v", len(cs), len(tc.headings), cs)
				}
				for i, c := range cs {
					if strings.Join(c.Heading, "/") != strings.Join(tc.headings[i], "/") {
						t.Errorf("chunk %d heading %v, want %v", i, c.Heading, tc.headings[i])
					}
				}
			}
			for i, c := range cs {
				if c.N != i || len(c.Body) > tc.maxBody || c.Body != tc.text[c.Start:c.End] {
					t.Errorf("chunk %d: n=%d len=%d", i, c.N, len(c.Body))
				}
				// Never split inside a word when spaces are available.
				if c.Start > 0 && !isSpaceByte(tc.text[c.Start-1]) && !isSpaceByte(tc.text[c.Start]) {
					t.Errorf("chunk %d starts mid-word: %q", i, c.Body)
				}
				if c.End < len(tc.text) && !isSpaceByte(tc.text[c.End]) {
					t.Errorf("chunk %d ends mid-word: %q", i, c.Body)
				}
			}
			if tc.name == "split with overlap" {
				if len(cs) < 5 {
					t.Fatalf("%d chunks for 460 bytes at 100", len(cs))
				}
				for i := 1; i < len(cs); i++ {
					ov := cs[i-1].End - cs[i].Start
					if ov <= 0 || ov > tc.overlap+10 {
						t.Errorf("overlap between %d and %d is %d", i-1, i, ov)
					}
				}
			}
			checkCoverage(t, tc.text, cs)
		})
	}
}

// checkCoverage fails unless every non-space byte outside heading lines lies
// in some chunk.
func checkCoverage(t *testing.T, text string, cs []chunk) {
	t.Helper()
	covered := make([]bool, len(text))
	for _, c := range cs {
		for i := c.Start; i < c.End; i++ {
			covered[i] = true
		}
	}
	for _, s := range splitSections(text) {
		for i := s.start; i < s.end && i < len(text); i++ {
			if !covered[i] && !isSpaceByte(text[i]) {
				t.Fatalf("byte %d (%q) not covered; text %q", i, text[i], text)
			}
		}
	}
}

func FuzzChunk(f *testing.F) {
	f.Add("# A\n\n## B\n\nsome words here\n", 64, 10)
	f.Add(strings.Repeat("x", 300)+" "+strings.Repeat("é", 100), 64, 32)
	f.Add("```\n# c\n```\n#\n####### seven\n  # three", 80, 0)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		size = 64 + abs(size)%2000
		overlap = abs(overlap) % (size/2 + 1)
		cs := chunkText(text, size, overlap)
		for i, c := range cs {
			if len(c.Body) > size || c.N != i || c.Start < 0 || c.End > len(text) || c.Body != text[c.Start:c.End] {
				t.Fatalf("bad chunk %d: %+v", i, c)
			}
		}
		checkCoverage(t, text, cs)
	})
}

func abs(x int) int {
	if x < 0 {
		if x == -x {
			return 0
		}
		return -x
	}
	return x
}
