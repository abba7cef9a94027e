package index

import "slices"

// topK keeps the k best hits seen so far. Its heap has the worst kept hit at
// the root, so a new hit only has to beat the root to get in. Ties on score
// are broken by id (smaller id is better) so that results are deterministic.
type topK struct {
	k    int
	heap []Hit
}

func newTopK(k int) *topK {
	return &topK{k: k, heap: make([]Hit, 0, min(k, 1024))}
}

// worse reports whether a ranks below b.
func worse(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.ID > b.ID
}

// beats reports whether a hit with this score could enter. It is the cheap
// test done before a filter is asked, so that the filter is only consulted
// for candidates that would take a slot; equal scores are let through and
// decided by id in push.
func (t *topK) beats(score float64) bool {
	return len(t.heap) < t.k || score >= t.heap[0].Score
}

// push offers a hit; it is kept if it is among the k best so far.
func (t *topK) push(h Hit) {
	if t.k <= 0 {
		return
	}
	if len(t.heap) < t.k {
		t.heap = append(t.heap, h)
		t.up(len(t.heap) - 1)
		return
	}
	if !worse(t.heap[0], h) {
		return
	}
	t.heap[0] = h
	t.down(0)
}

// sorted returns the kept hits, best first. The topK must not be used after.
func (t *topK) sorted() []Hit {
	out := t.heap
	slices.SortFunc(out, func(a, b Hit) int {
		switch {
		case worse(b, a):
			return -1
		case worse(a, b):
			return 1
		}
		return 0
	})
	t.heap = nil
	return out
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(t.heap[i], t.heap[p]) {
			return
		}
		t.heap[i], t.heap[p] = t.heap[p], t.heap[i]
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		w := l
		if r := l + 1; r < n && worse(t.heap[r], t.heap[l]) {
			w = r
		}
		if !worse(t.heap[w], t.heap[i]) {
			return
		}
		t.heap[i], t.heap[w] = t.heap[w], t.heap[i]
		i = w
	}
}
