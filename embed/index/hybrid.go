package index

// rrfK is the constant of reciprocal-rank fusion (Cormack, Clarke and
// Büttcher, 2009): a document at rank r in a list earns 1/(rrfK + r). 60 is
// the paper's value; it keeps one list's top result from drowning the other.
const rrfK = 60

// Hybrid fuses lexical and vector retrieval by reciprocal rank. Vec may be
// nil, which makes it lexical only.
type Hybrid struct {
	Lex *Lexical
	Vec *Vector
}

// Search returns up to k ids ranked by reciprocal-rank fusion of the BM25
// ranking of query and the vector ranking of qvec, best first. Hit.Score is
// the fused score Σ 1/(60 + rank), rank counted from 1, so a document both
// lists rank highly comes first, and documents found by only one list still
// appear. Each list is fetched to depth max(4k, 50) with allow applied, so
// hidden chunks never displace visible ones. qvec == nil (or a nil Vec)
// searches lexically only; the scores are then fused from the one list.
func (h *Hybrid) Search(query string, qvec []float32, k int, allow Filter) []Hit {
	if k <= 0 {
		return nil
	}
	depth := max(4*k, 50)
	var lists [][]Hit
	if h.Lex != nil {
		lists = append(lists, h.Lex.Search(query, depth, allow))
	}
	if h.Vec != nil && qvec != nil {
		lists = append(lists, h.Vec.Search(qvec, depth, allow))
	}
	return fuse(lists, k)
}

// lexicalTieBreak is added per lexical rank so that, between hits with the
// same fused score, the one the words matched better comes first: a hit at
// rank r of the first (lexical) list gets lexicalTieBreak/r more. It is far
// below the smallest difference of two reciprocal ranks at any depth used
// here (about 1/(60+200)² ≈ 1.5e-5), so it only ever breaks ties — e.g. an
// exact keyword hit against an unrelated chunk that happens to be the
// nearest vector.
const lexicalTieBreak = 1e-9

// fuse ranks ids by their summed reciprocal ranks across lists.
func fuse(lists [][]Hit, k int) []Hit {
	scores := make(map[string]float64)
	for li, list := range lists {
		for i, hit := range list {
			scores[hit.ID] += 1 / float64(rrfK+i+1)
			if li == 0 {
				scores[hit.ID] += lexicalTieBreak / float64(i+1)
			}
		}
	}
	top := newTopK(k)
	for id, sc := range scores {
		top.push(Hit{ID: id, Score: sc})
	}
	return top.sorted()
}
