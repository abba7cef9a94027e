package index

import (
	"math"
	"slices"
	"sync"
)

// BM25 parameters: the usual defaults, which suit chunks of a few hundred
// words.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// Lexical is an in-memory BM25 index over chunks. The zero value is not
// usable; call NewLexical.
type Lexical struct {
	mu sync.RWMutex

	vocab    map[string]uint32 // term → term number
	terms    []string          // term number → term ("" when free)
	postings [][]posting       // term number → postings, sorted by doc number
	freeTerm []uint32          // term numbers free for reuse

	docs     []lexDoc          // doc number → document (zero when free)
	byID     map[string]uint32 // chunk id → doc number
	freeDoc  []uint32          // doc numbers free for reuse
	totalLen int64             // sum of document lengths in terms

	scratch sync.Pool // *lexScratch, one per concurrent search
}

type posting struct {
	doc uint32
	tf  uint32
}

type lexDoc struct {
	id     string
	length uint32   // number of terms, counting repeats
	terms  []uint32 // distinct term numbers, so that Remove can clean postings
}

// lexScratch is a dense score accumulator plus the list of documents it
// touched, so that resetting it costs only what the query touched.
type lexScratch struct {
	acc     []float64
	touched []uint32
}

// NewLexical returns an empty BM25 index.
func NewLexical() *Lexical {
	return &Lexical{
		vocab: make(map[string]uint32),
		byID:  make(map[string]uint32),
	}
}

// Add indexes text under id, replacing what id held before.
func (l *Lexical) Add(id, text string) {
	terms, tfs, length := termCounts(tokenize(text, nil))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeLocked(id)
	l.insertLocked(id, terms, tfs, length)
}

// Remove drops id from the index; its postings go with it, and a term no
// other document uses leaves the vocabulary. Removing an unknown id is a
// no-op.
func (l *Lexical) Remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removeLocked(id)
}

// Len returns the number of indexed documents.
func (l *Lexical) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.byID)
}

// Search returns up to k documents ranked by BM25 against query, best first.
// allow, when not nil, is applied before ranking: a document it rejects never
// takes one of the k slots. allow is called with the index read-locked and
// must not write to it.
func (l *Lexical) Search(query string, k int, allow Filter) []Hit {
	if k <= 0 {
		return nil
	}
	qterms := tokenize(query, nil)
	slices.Sort(qterms)
	qterms = slices.Compact(qterms)

	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.byID)
	if n == 0 || len(qterms) == 0 {
		return nil
	}
	avgdl := float64(l.totalLen) / float64(n)
	if avgdl == 0 {
		avgdl = 1
	}
	s := l.getScratch()
	defer l.scratch.Put(s)

	for _, term := range qterms {
		t, ok := l.vocab[term]
		if !ok {
			continue
		}
		ps := l.postings[t]
		df := float64(len(ps))
		idf := math.Log(1 + (float64(n)-df+0.5)/(df+0.5))
		for _, p := range ps {
			tf := float64(p.tf)
			dl := float64(l.docs[p.doc].length)
			sc := idf * tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*dl/avgdl))
			if s.acc[p.doc] == 0 {
				s.touched = append(s.touched, p.doc)
			}
			s.acc[p.doc] += sc
		}
	}

	top := newTopK(k)
	for _, d := range s.touched {
		sc := s.acc[d]
		s.acc[d] = 0
		if !top.beats(sc) {
			continue
		}
		id := l.docs[d].id
		if allow != nil && !allow(id) {
			continue
		}
		top.push(Hit{ID: id, Score: sc})
	}
	s.touched = s.touched[:0]
	return top.sorted()
}

// getScratch returns a zeroed accumulator covering every doc number.
func (l *Lexical) getScratch() *lexScratch {
	s, _ := l.scratch.Get().(*lexScratch)
	if s == nil {
		s = &lexScratch{}
	}
	if len(s.acc) < len(l.docs) {
		s.acc = make([]float64, len(l.docs)+len(l.docs)/4)
	}
	return s
}

// termCounts turns a token list into sorted distinct terms, their
// frequencies and the total length.
func termCounts(tokens []string) (terms []string, tfs []uint32, length uint32) {
	slices.Sort(tokens)
	for i := 0; i < len(tokens); {
		j := i + 1
		for j < len(tokens) && tokens[j] == tokens[i] {
			j++
		}
		terms = append(terms, tokens[i])
		tfs = append(tfs, uint32(j-i))
		i = j
	}
	return terms, tfs, uint32(len(tokens))
}

// insertLocked adds a document whose id is not present.
func (l *Lexical) insertLocked(id string, terms []string, tfs []uint32, length uint32) {
	var d uint32
	if n := len(l.freeDoc); n > 0 {
		d = l.freeDoc[n-1]
		l.freeDoc = l.freeDoc[:n-1]
	} else {
		d = uint32(len(l.docs))
		l.docs = append(l.docs, lexDoc{})
	}
	doc := lexDoc{id: id, length: length, terms: make([]uint32, len(terms))}
	for i, term := range terms {
		t := l.termNumber(term)
		doc.terms[i] = t
		l.postings[t] = insertPosting(l.postings[t], posting{doc: d, tf: tfs[i]})
	}
	l.docs[d] = doc
	l.byID[id] = d
	l.totalLen += int64(length)
}

// termNumber returns the number of term, creating it if needed.
func (l *Lexical) termNumber(term string) uint32 {
	if t, ok := l.vocab[term]; ok {
		return t
	}
	var t uint32
	if n := len(l.freeTerm); n > 0 {
		t = l.freeTerm[n-1]
		l.freeTerm = l.freeTerm[:n-1]
		l.terms[t] = term
	} else {
		t = uint32(len(l.terms))
		l.terms = append(l.terms, term)
		l.postings = append(l.postings, nil)
	}
	l.vocab[term] = t
	return t
}

// insertPosting keeps ps sorted by doc number. Fresh doc numbers are the
// largest, so the common case is an append.
func insertPosting(ps []posting, p posting) []posting {
	if len(ps) == 0 || ps[len(ps)-1].doc < p.doc {
		return append(ps, p)
	}
	i, _ := slices.BinarySearchFunc(ps, p.doc, cmpPostingDoc)
	return slices.Insert(ps, i, p)
}

func cmpPostingDoc(p posting, doc uint32) int {
	switch {
	case p.doc < doc:
		return -1
	case p.doc > doc:
		return 1
	}
	return 0
}

func (l *Lexical) removeLocked(id string) {
	d, ok := l.byID[id]
	if !ok {
		return
	}
	doc := l.docs[d]
	for _, t := range doc.terms {
		ps := l.postings[t]
		if i, found := slices.BinarySearchFunc(ps, d, cmpPostingDoc); found {
			ps = slices.Delete(ps, i, i+1)
		}
		if len(ps) > 0 {
			l.postings[t] = ps
			continue
		}
		delete(l.vocab, l.terms[t])
		l.terms[t] = ""
		l.postings[t] = nil
		l.freeTerm = append(l.freeTerm, t)
	}
	l.totalLen -= int64(doc.length)
	l.docs[d] = lexDoc{}
	l.freeDoc = append(l.freeDoc, d)
	delete(l.byID, id)
}
