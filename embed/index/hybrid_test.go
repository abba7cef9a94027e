package index

import (
	"math"
	"slices"
	"testing"
)

// TestHybridFuses builds a corpus where one chunk matches only the words of
// the query, one only its meaning (its vector), and one both.
func TestHybridFuses(t *testing.T) {
	lex := NewLexical()
	vec := NewVector(3, VectorOptions{})
	add := func(id, text string, v []float32) {
		lex.Add(id, text)
		if err := vec.Add(id, v); err != nil {
			t.Fatal(err)
		}
	}
	add("both", "postgres replication lag after failover", []float32{1, 0.1, 0})
	add("words", "postgres replication slot full", []float32{-1, 0, 0.2})
	add("meaning", "standby fell behind the primary", []float32{0.9, 0.3, 0})
	add("neither", "certificate rotation runbook", []float32{0, -1, 0})
	h := &Hybrid{Lex: lex, Vec: vec}
	q := []float32{1, 0.15, 0}

	hits := h.Search("postgres replication lag", q, 3, nil)
	got := ids(hits)
	if len(got) != 3 || got[0] != "both" || !slices.Contains(got, "words") || !slices.Contains(got, "meaning") {
		t.Fatalf("hybrid = %v, want both first, then words and meaning", hits)
	}
	// "both" is first in each list: 1/61 + 1/61.
	if want := 2.0 / 61; math.Abs(hits[0].Score-want) > 1e-8 {
		t.Fatalf("fused score of both = %v, want %v", hits[0].Score, want)
	}

	// Without a query vector (or without a vector index) it is lexical
	// only: the meaning-only chunk cannot be found.
	for _, hh := range []*Hybrid{h, {Lex: lex}} {
		got := ids(hh.Search("postgres replication lag", nil, 3, nil))
		if slices.Contains(got, "meaning") || len(got) != 2 || got[0] != "both" {
			t.Fatalf("lexical only = %v", got)
		}
	}

	// The filter applies to both lists.
	noBoth := func(id string) bool { return id != "both" }
	got = ids(h.Search("postgres replication lag", q, 3, noBoth))
	if slices.Contains(got, "both") || len(got) != 3 {
		t.Fatalf("filtered hybrid = %v, want three hits without both", got)
	}
	if h.Search("postgres", q, 0, nil) != nil {
		t.Fatalf("k = 0 returned hits")
	}
}

func TestFuse(t *testing.T) {
	a := []Hit{{ID: "x"}, {ID: "y"}, {ID: "z"}}
	b := []Hit{{ID: "z"}, {ID: "w"}}
	got := fuse([][]Hit{a, b}, 10)
	// z: 1/63 + 1/61 beats x: 1/61; y and w tie at 1/62 and the lexical
	// one (y, from the first list) comes first.
	want := []string{"z", "x", "y", "w"}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("fuse = %v, want %v", got, want)
	}
	if got := fuse([][]Hit{a, b}, 2); !slices.Equal(ids(got), want[:2]) {
		t.Fatalf("fuse k=2 = %v", got)
	}
}

// TestFuseTieGoesToTheWords: an exact keyword hit found only lexically and
// an unrelated chunk found only as the nearest vector have the same
// reciprocal rank; the keyword hit must win, whatever the ids.
func TestFuseTieGoesToTheWords(t *testing.T) {
	for _, ids2 := range [][2]string{{"a-keyword", "z-vector"}, {"z-keyword", "a-vector"}} {
		lexical := []Hit{{ID: ids2[0]}}
		vector := []Hit{{ID: ids2[1]}}
		got := fuse([][]Hit{lexical, vector}, 2)
		if got[0].ID != ids2[0] {
			t.Fatalf("fuse = %v, want the lexical hit %s first", got, ids2[0])
		}
	}
}
