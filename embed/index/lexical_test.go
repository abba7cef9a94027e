package index

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"testing"
)

func ids(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func TestLexicalRareTermRanksFirst(t *testing.T) {
	l := NewLexical()
	l.Add("a", "error connecting to the database, error retried")
	l.Add("b", "error in the payment service")
	l.Add("c", "segfault error in the worker")
	l.Add("d", "error budget burned")
	l.Add("e", "disk full on node")
	hits := l.Search("error segfault", 10, nil)
	if len(hits) != 4 || hits[0].ID != "c" {
		t.Fatalf("hits = %v, want c first of 4 (e has neither term)", hits)
	}
	if slices.Contains(ids(hits), "e") {
		t.Fatalf("hits = %v: e matches no query term", hits)
	}
}

// TestLexicalScore checks the BM25 arithmetic on a corpus small enough to do
// by hand.
func TestLexicalScore(t *testing.T) {
	l := NewLexical()
	l.Add("a", "timeout timeout gateway") // 3 terms
	l.Add("b", "gateway")                 // 1 term
	hits := l.Search("timeout", 10, nil)
	if len(hits) != 1 || hits[0].ID != "a" {
		t.Fatalf("hits = %v, want [a]", hits)
	}
	n, df, tf, dl, avgdl := 2.0, 1.0, 2.0, 3.0, 2.0
	idf := math.Log(1 + (n-df+0.5)/(df+0.5))
	want := idf * tf * (1.2 + 1) / (tf + 1.2*(1-0.75+0.75*dl/avgdl))
	if math.Abs(hits[0].Score-want) > 1e-12 {
		t.Fatalf("score = %v, want %v", hits[0].Score, want)
	}
}

func TestLexicalLengthNormalisation(t *testing.T) {
	l := NewLexical()
	filler := "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike"
	l.Add("long", "upstream timeout "+filler+" "+filler)
	l.Add("short", "upstream timeout")
	l.Add("other", filler)
	hits := l.Search("timeout", 10, nil)
	if got := ids(hits); !slices.Equal(got, []string{"short", "long"}) {
		t.Fatalf("ranking = %v, want the short document first", got)
	}
	// With equal lengths, the higher term frequency wins.
	l2 := NewLexical()
	l2.Add("once", "timeout alpha bravo")
	l2.Add("twice", "timeout timeout bravo")
	if got := ids(l2.Search("timeout", 10, nil)); !slices.Equal(got, []string{"twice", "once"}) {
		t.Fatalf("ranking = %v, want twice first", got)
	}
}

func TestLexicalReplace(t *testing.T) {
	l := NewLexical()
	l.Add("x", "certificate expired")
	l.Add("x", "disk pressure")
	if l.Len() != 1 {
		t.Fatalf("Len = %d, want 1", l.Len())
	}
	if hits := l.Search("certificate", 10, nil); len(hits) != 0 {
		t.Fatalf("old text still found: %v", hits)
	}
	if hits := l.Search("disk", 10, nil); len(hits) != 1 {
		t.Fatalf("new text not found: %v", hits)
	}
	checkLexicalInvariants(t, l)
}

func TestLexicalRemove(t *testing.T) {
	l := NewLexical()
	l.Add("a", "kafka consumer lag growing")
	l.Add("b", "kafka broker down")
	l.Add("c", "unrelated text")
	l.Remove("a")
	l.Remove("nope") // unknown ids are ignored
	if l.Len() != 2 {
		t.Fatalf("Len = %d, want 2", l.Len())
	}
	for _, q := range []string{"kafka", "consumer lag", "growing", "kafka consumer lag growing"} {
		if slices.Contains(ids(l.Search(q, 10, nil)), "a") {
			t.Fatalf("removed document returned for %q", q)
		}
	}
	// Terms only "a" used are gone from the vocabulary; shared ones keep
	// only the other document's posting.
	for _, term := range tokenize("consumer lag growing", nil) {
		if _, ok := l.vocab[term]; ok {
			t.Errorf("term %q still in the vocabulary", term)
		}
	}
	if ps := l.postings[l.vocab["kafka"]]; len(ps) != 1 || l.docs[ps[0].doc].id != "b" {
		t.Errorf("postings of kafka = %v, want only b", ps)
	}
	checkLexicalInvariants(t, l)

	// Free slots are reused and the index stays consistent.
	l.Add("d", "consumer lag again")
	if got := ids(l.Search("consumer", 10, nil)); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("after re-add: %v", got)
	}
	l.Remove("b")
	l.Remove("c")
	l.Remove("d")
	if l.Len() != 0 || len(l.vocab) != 0 || l.totalLen != 0 {
		t.Fatalf("empty index keeps state: len %d vocab %d totalLen %d", l.Len(), len(l.vocab), l.totalLen)
	}
	checkLexicalInvariants(t, l)
}

// checkLexicalInvariants verifies that postings, vocabulary and documents
// agree.
func checkLexicalInvariants(t *testing.T, l *Lexical) {
	t.Helper()
	var total int64
	for id, d := range l.byID {
		doc := l.docs[d]
		if doc.id != id {
			t.Fatalf("byID[%q] = %d holds %q", id, d, doc.id)
		}
		total += int64(doc.length)
		var sum uint32
		for _, term := range doc.terms {
			i, ok := slices.BinarySearchFunc(l.postings[term], d, cmpPostingDoc)
			if !ok {
				t.Fatalf("doc %q: no posting under term %q", id, l.terms[term])
			}
			sum += l.postings[term][i].tf
		}
		if sum != doc.length {
			t.Fatalf("doc %q: term frequencies sum to %d, length %d", id, sum, doc.length)
		}
	}
	if total != l.totalLen {
		t.Fatalf("totalLen = %d, documents sum to %d", l.totalLen, total)
	}
	for term, tn := range l.vocab {
		ps := l.postings[tn]
		if len(ps) == 0 {
			t.Fatalf("term %q in the vocabulary with no postings", term)
		}
		if !slices.IsSortedFunc(ps, func(a, b posting) int { return cmpPostingDoc(a, b.doc) }) {
			t.Fatalf("postings of %q not sorted", term)
		}
		for _, p := range ps {
			if d, ok := l.byID[l.docs[p.doc].id]; !ok || d != p.doc {
				t.Fatalf("term %q: posting to free doc %d", term, p.doc)
			}
		}
	}
}

func TestLexicalFilterBeforeTopK(t *testing.T) {
	l := NewLexical()
	for i := 0; i < 20; i++ { // strong matches, all hidden
		l.Add(fmt.Sprintf("hidden-%02d", i), "disk disk disk full")
	}
	for i := 0; i < 5; i++ { // weak matches, visible
		l.Add(fmt.Sprintf("visible-%d", i), "disk usage report for the week with many other words")
	}
	visible := func(id string) bool { return id[0] == 'v' }
	hits := l.Search("disk full", 3, visible)
	if len(hits) != 3 {
		t.Fatalf("got %d hits, want 3 visible ones: %v", len(hits), hits)
	}
	for _, h := range hits {
		if !visible(h.ID) {
			t.Fatalf("hidden chunk returned: %v", hits)
		}
	}
	if hits := l.Search("disk", 10, func(string) bool { return false }); len(hits) != 0 {
		t.Fatalf("deny-all filter returned %v", hits)
	}
}

func TestLexicalEdgeCases(t *testing.T) {
	l := NewLexical()
	if hits := l.Search("anything", 10, nil); hits != nil {
		t.Fatalf("empty index: %v", hits)
	}
	l.Add("a", "the and of") // only stop words: indexed, never matched
	l.Add("b", "timeout")
	if hits := l.Search("timeout", 0, nil); hits != nil {
		t.Fatalf("k = 0: %v", hits)
	}
	if hits := l.Search("the", 10, nil); hits != nil {
		t.Fatalf("stop-word query: %v", hits)
	}
	if got := ids(l.Search("TIMEOUTS", 10, nil)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("case and plural folding: %v", got)
	}
	// Ties are broken by id, so results are deterministic.
	l.Add("c", "timeout")
	if got := ids(l.Search("timeout", 10, nil)); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("tie order: %v", got)
	}
}

func TestLexicalConcurrent(t *testing.T) {
	l := NewLexical()
	for i := 0; i < 200; i++ {
		l.Add(fmt.Sprint(i), fmt.Sprintf("service-%d restarted after oom kill %d", i%7, i))
	}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Search("oom restarted service-3", 10, func(id string) bool { return len(id)%2 == 0 })
				if i%50 == 0 {
					if err := l.Save(io.Discard); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	for i := 0; i < 400; i++ {
		id := fmt.Sprint(i % 250)
		if i%3 == 0 {
			l.Remove(id)
		} else {
			l.Add(id, "oom kill of service-3 restarted")
		}
	}
	wg.Wait()
	checkLexicalInvariants(t, l)
}
