package index

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"
)

func randomUnit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var ss float64
	for i := range v {
		x := r.NormFloat64()
		v[i] = float32(x)
		ss += x * x
	}
	inv := 1 / math.Sqrt(ss)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
	return v
}

// graphOnly makes a Vector search its graph at any size, so that tests on
// small corpora exercise HNSW rather than the exact scan.
var graphOnly = VectorOptions{ExactBelow: -1}

// testSeed returns a seed for a randomised test and logs it, so that a
// failure can be replayed by hard-coding the printed value.
func testSeed(t *testing.T) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	return seed
}

func TestVectorRecall(t *testing.T) {
	const (
		n, dim, queries, k = 5000, 64, 200, 10
	)
	r := rand.New(rand.NewSource(testSeed(t)))
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = randomUnit(r, dim)
	}
	qs := make([][]float32, queries)
	for i := range qs {
		qs[i] = randomUnit(r, dim)
	}
	v := NewVector(dim, graphOnly)
	for i, vec := range vecs {
		if err := v.Add(benchID(i), vec); err != nil {
			t.Fatal(err)
		}
	}
	truth := exactTopK(vecs, qs, k, nil)
	_, _, recall := measureVector(v, qs, truth, nil)
	t.Logf("recall@10 = %.3f at %d vectors of dimension %d", recall, n, dim)
	if recall < 0.95 {
		t.Fatalf("recall@10 = %.3f, want ≥ 0.95", recall)
	}
	// Each query's own vector is its nearest neighbour.
	for i := 0; i < 50; i++ {
		if hits := v.Search(vecs[i], 1, nil); len(hits) != 1 || hits[0].ID != benchID(i) {
			t.Fatalf("search for vector %d returned %v", i, hits)
		}
	}
}

func TestVectorAddErrors(t *testing.T) {
	v := NewVector(3, VectorOptions{})
	if err := v.Add("a", []float32{1, 2}); !errors.Is(err, ErrDimension) {
		t.Errorf("short vector: %v, want ErrDimension", err)
	}
	if err := v.Add("a", []float32{0, 0, 0}); !errors.Is(err, ErrBadVector) {
		t.Errorf("zero vector: %v, want ErrBadVector", err)
	}
	if err := v.Add("a", []float32{1, float32(math.NaN()), 0}); !errors.Is(err, ErrBadVector) {
		t.Errorf("NaN: %v, want ErrBadVector", err)
	}
	if err := v.Add("a", []float32{float32(math.Inf(1)), 0, 0}); !errors.Is(err, ErrBadVector) {
		t.Errorf("Inf: %v, want ErrBadVector", err)
	}
	if v.Len() != 0 {
		t.Fatalf("Len = %d after failed adds", v.Len())
	}
	// Vectors are normalised: scale does not change the score.
	if err := v.Add("a", []float32{10, 0, 0}); err != nil {
		t.Fatal(err)
	}
	hits := v.Search([]float32{0.5, 0, 0}, 1, nil)
	if len(hits) != 1 || math.Abs(hits[0].Score-1) > 1e-6 {
		t.Fatalf("hits = %v, want a with similarity 1", hits)
	}
}

func TestVectorSearchEdgeCases(t *testing.T) {
	v := NewVector(2, VectorOptions{})
	if hits := v.Search([]float32{1, 0}, 5, nil); hits != nil {
		t.Fatalf("empty index: %v", hits)
	}
	v.Add("a", []float32{1, 0})
	v.Add("b", []float32{0, 1})
	for name, q := range map[string][]float32{"wrong dimension": {1, 0, 0}, "zero": {0, 0}} {
		if hits := v.Search(q, 5, nil); hits != nil {
			t.Errorf("%s query: %v", name, hits)
		}
	}
	if hits := v.Search([]float32{1, 0}, 0, nil); hits != nil {
		t.Errorf("k = 0: %v", hits)
	}
	if got := ids(v.Search([]float32{1, 0.1}, 5, nil)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("k above size: %v", got)
	}
}

func TestVectorReplaceAndRemove(t *testing.T) {
	r := rand.New(rand.NewSource(testSeed(t)))
	const n, dim = 500, 16
	v := NewVector(dim, graphOnly)
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = randomUnit(r, dim)
		v.Add(benchID(i), vecs[i])
	}
	// Replace chunk 0 with another vector: its old position finds nothing
	// under its id.
	moved := randomUnit(r, dim)
	v.Add(benchID(0), moved)
	if v.Len() != n {
		t.Fatalf("Len = %d after replace, want %d", v.Len(), n)
	}
	if hits := v.Search(vecs[0], 1, nil); len(hits) == 1 && hits[0].ID == benchID(0) && hits[0].Score > 0.999 {
		t.Fatalf("old vector of a replaced id still found: %v", hits)
	}
	if hits := v.Search(moved, 1, nil); len(hits) != 1 || hits[0].ID != benchID(0) {
		t.Fatalf("replaced vector not found: %v", hits)
	}
	// Remove a few and make sure no search returns them.
	removed := map[string]bool{}
	for i := 1; i <= 20; i++ {
		v.Remove(benchID(i))
		removed[benchID(i)] = true
	}
	v.Remove("unknown")
	if v.Len() != n-20 {
		t.Fatalf("Len = %d, want %d", v.Len(), n-20)
	}
	for i := 1; i <= 20; i++ {
		for _, h := range v.Search(vecs[i], 50, nil) {
			if removed[h.ID] {
				t.Fatalf("removed id %s returned", h.ID)
			}
		}
	}
	if v.dead == 0 {
		t.Fatalf("expected tombstones before the rebuild threshold")
	}
}

func TestVectorRebuildAfterRemovals(t *testing.T) {
	r := rand.New(rand.NewSource(testSeed(t)))
	const n, dim = 600, 16
	v := NewVector(dim, graphOnly)
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = randomUnit(r, dim)
		v.Add(benchID(i), vecs[i])
	}
	for i := 0; i < n/2; i++ {
		v.Remove(benchID(i))
	}
	// A third of the graph was tombstones at i = 200, so it was rebuilt.
	if v.g.len() >= n || v.g.len() != v.Len()+v.dead {
		t.Fatalf("graph has %d nodes for %d live and %d dead: no rebuild", v.g.len(), v.Len(), v.dead)
	}
	live := vecs[n/2:]
	qs := make([][]float32, 50)
	for i := range qs {
		qs[i] = randomUnit(r, dim)
	}
	truth := exactTopK(live, qs, 10, nil)
	for i := range truth { // exactTopK names ids by position in live
		for j, id := range truth[i] {
			var pos int
			fmt.Sscanf(id, "chunk-%d", &pos)
			truth[i][j] = benchID(pos + n/2)
		}
	}
	if _, _, recall := measureVector(v, qs, truth, nil); recall < 0.95 {
		t.Fatalf("recall after rebuild = %.3f", recall)
	}
	for i := n / 2; i < n; i += 37 {
		if hits := v.Search(vecs[i], 1, nil); len(hits) != 1 || hits[0].ID != benchID(i) {
			t.Fatalf("vector %d not found after rebuild: %v", i, hits)
		}
	}
}

func TestVectorFilteredSearch(t *testing.T) {
	r := rand.New(rand.NewSource(testSeed(t)))
	const n, dim, k = 3000, 32, 10
	v := NewVector(dim, graphOnly)
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = randomUnit(r, dim)
		v.Add(benchID(i), vecs[i])
	}
	qs := make([][]float32, 30)
	for i := range qs {
		qs[i] = randomUnit(r, dim)
	}
	for _, every := range []int{2, 10, 100, 1000, 5000} {
		keep := func(i int) bool { return i%every == 0 }
		set := map[string]bool{}
		for i := 0; i < n; i += every {
			set[benchID(i)] = true
		}
		allow := func(id string) bool { return set[id] }
		allowed := (n + every - 1) / every
		if every <= 10 {
			// A filter letting a tenth through is served by the graph: the
			// search fills its whole beam with allowed nodes within budget,
			// no exact scan needed.
			accept := func(n uint32) bool { return allow(v.ids[n]) }
			ef := v.opts.EfSearch
			for _, q := range qs {
				res, _, _ := v.g.search(q, ef, accept, 0)
				if len(res) != min(ef, allowed) {
					t.Fatalf("1 in %d allowed: graph search found %d results", every, len(res))
				}
			}
		}
		truth := exactTopK(vecs, qs, k, keep)
		// Each way of answering must hold: the graph (falling back to a
		// scan when it finds fewer than k), the scan, and the cost-based
		// choice between them.
		for _, plan := range []filterPlan{planGraph, planScan, planAuto} {
			v.plan = plan
			found := 0
			for qi, q := range qs {
				hits := v.Search(q, k, allow)
				if len(hits) != min(k, allowed) {
					t.Fatalf("1 in %d allowed, plan %d: %d hits, want %d", every, plan, len(hits), min(k, allowed))
				}
				for _, h := range hits {
					if !allow(h.ID) {
						t.Fatalf("1 in %d allowed, plan %d: disallowed %s returned", every, plan, h.ID)
					}
					if slices.Contains(truth[qi], h.ID) {
						found++
					}
				}
			}
			recall := float64(found) / float64(len(qs)*min(k, allowed))
			t.Logf("1 in %d allowed, plan %d: recall@10 %.3f", every, plan, recall)
			if recall < 0.9 {
				t.Fatalf("1 in %d allowed, plan %d: recall@10 = %.3f, want ≥ 0.9", every, plan, recall)
			}
		}
		v.plan = planAuto
	}
	// Tombstones count as filtered out too.
	for i := 0; i < n; i += 2 {
		v.Remove(benchID(i))
	}
	v.plan = planGraph
	for _, q := range qs[:5] {
		hits := v.Search(q, k, func(id string) bool { return true })
		if len(hits) != k {
			t.Fatalf("%d hits, want %d", len(hits), k)
		}
		for _, h := range hits {
			var i int
			fmt.Sscanf(h.ID, "chunk-%d", &i)
			if i%2 == 0 {
				t.Fatalf("removed %s returned", h.ID)
			}
		}
	}
}

func TestVectorConcurrent(t *testing.T) {
	r := rand.New(rand.NewSource(testSeed(t)))
	const dim = 8
	v := NewVector(dim, graphOnly)
	vecs := make([][]float32, 400)
	for i := range vecs {
		vecs[i] = randomUnit(r, dim)
	}
	for i := 0; i < 200; i++ {
		v.Add(benchID(i), vecs[i])
	}
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				v.Search(vecs[i%len(vecs)], 5, func(id string) bool { return len(id)%2 == 0 })
				v.Search(vecs[i%len(vecs)], 5, nil)
				v.Len()
				if i%100 == 0 {
					if err := v.Save(io.Discard); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	for i := 0; i < 600; i++ { // enough removals to force rebuilds
		if i%2 == 0 {
			v.Remove(benchID(i % 400))
		} else {
			v.Add(benchID(i%400), vecs[i%400])
		}
	}
	wg.Wait()
	if v.Len() != len(v.byID) || v.g.len() != len(v.ids) || len(v.ids) != len(v.live) {
		t.Fatalf("inconsistent: Len %d, graph %d, ids %d, live %d", v.Len(), v.g.len(), len(v.ids), len(v.live))
	}
}

// TestVectorExactBelow checks that a small index answers exactly: the same
// hits, scores and order as brute force.
func TestVectorExactBelow(t *testing.T) {
	r := rand.New(rand.NewSource(testSeed(t)))
	const n, dim = 800, 24
	v := NewVector(dim, VectorOptions{})
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = randomUnit(r, dim)
		v.Add(benchID(i), vecs[i])
	}
	keep := func(i int) bool { return i%3 == 0 }
	for i := 0; i < 20; i++ {
		q := randomUnit(r, dim)
		want := exactTopK(vecs, [][]float32{q}, 10, keep)[0]
		got := ids(v.Search(q, 10, func(id string) bool {
			var j int
			fmt.Sscanf(id, "chunk-%d", &j)
			return keep(j)
		}))
		if !slices.Equal(got, want) {
			t.Fatalf("exact search = %v, brute force = %v", got, want)
		}
	}
}
