package index

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

var (
	// ErrDimension is returned when a vector's length is not the index's
	// dimension.
	ErrDimension = errors.New("index: wrong vector dimension")
	// ErrBadVector is returned for a vector that cannot be normalised: all
	// zeros, or holding NaN or ±Inf.
	ErrBadVector = errors.New("index: zero or non-finite vector")
)

// VectorOptions tunes the HNSW graph. Zero fields take the defaults below,
// chosen on 384-dimensional vectors (all-MiniLM-L6-v2) at 100k chunks; see
// docs/benchmarks.md.
type VectorOptions struct {
	// M is the number of links a node makes per layer (2M on layer 0).
	// More links: better recall, more memory, slower inserts. Default 16.
	M int
	// EfConstruction is the beam width while inserting. Default 200.
	EfConstruction int
	// EfSearch is the beam width while searching (raised to k when k is
	// larger). Default 128.
	EfSearch int
	// ExactBelow makes indexes with fewer live vectors than this answer by
	// an exhaustive scan: exact results, and at these sizes faster than a
	// graph search of comparable recall (a scan of 10k 384-dimensional
	// vectors takes about 0.3 ms). The graph is still maintained. Default
	// 10,000; negative means always use the graph.
	ExactBelow int
	// Seed seeds the level generator, so that the same inserts build the
	// same graph. Default 1.
	Seed int64
}

// Defaults for VectorOptions.
const (
	DefaultM              = 16
	DefaultEfConstruction = 200
	DefaultEfSearch       = 128
	DefaultExactBelow     = 10_000
)

// EnsureDefaults fills zero fields with the defaults.
func (o *VectorOptions) EnsureDefaults() {
	if o.M == 0 {
		o.M = DefaultM
	}
	if o.EfConstruction == 0 {
		o.EfConstruction = DefaultEfConstruction
	}
	if o.EfSearch == 0 {
		o.EfSearch = DefaultEfSearch
	}
	if o.ExactBelow == 0 {
		o.ExactBelow = DefaultExactBelow
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// Validate reports options that cannot work.
func (o *VectorOptions) Validate() error {
	switch {
	case o.M < 2:
		return fmt.Errorf("index: VectorOptions.M is %d, want at least 2", o.M)
	case o.EfConstruction < 1:
		return fmt.Errorf("index: VectorOptions.EfConstruction is %d, want at least 1", o.EfConstruction)
	case o.EfSearch < 1:
		return fmt.Errorf("index: VectorOptions.EfSearch is %d, want at least 1", o.EfSearch)
	}
	return nil
}

// Vector is an approximate nearest-neighbour index (HNSW) over L2-normalised
// vectors, ranked by cosine similarity. The zero value is not usable; call
// NewVector. While it holds fewer than ExactBelow vectors it answers by an
// exhaustive scan, which is exact and, at that size, faster.
//
// Removed and replaced ids are tombstoned: their nodes stay in the graph,
// where they still route searches, but never appear in results. When
// tombstones make up a third of the graph, the writer that crossed the line
// rebuilds the graph from the live vectors; readers keep searching the old
// graph meanwhile and are switched over when the new one is ready.
type Vector struct {
	wmu sync.Mutex   // serialises writers, held across a rebuild
	mu  sync.RWMutex // guards the fields below

	dim  int
	opts VectorOptions
	g    *graph
	ids  []string // node → chunk id
	live []bool   // node → not tombstoned
	byID map[string]uint32
	dead int

	cost searchCost // feeds the choice between graph search and scan
	plan filterPlan // planAuto outside tests and benchmarks
}

// NewVector returns an empty index for vectors of dimension dim. Zero option
// fields take defaults. It panics on dim < 1 or options Validate rejects:
// both are programming errors, not runtime conditions.
func NewVector(dim int, opts VectorOptions) *Vector {
	if dim < 1 {
		panic(fmt.Sprintf("index: NewVector: dimension %d", dim))
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	return &Vector{
		dim:  dim,
		opts: opts,
		g:    newGraph(dim, opts.M, opts.EfConstruction, opts.Seed),
		byID: make(map[string]uint32),
	}
}

// Dim returns the dimension the index was created with.
func (v *Vector) Dim() int { return v.dim }

// Len returns the number of live vectors.
func (v *Vector) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.byID)
}

// Add indexes vec under id, replacing what id held before. The vector is
// copied and L2-normalised.
func (v *Vector) Add(id string, vec []float32) error {
	if len(vec) != v.dim {
		return fmt.Errorf("add %q: %w: got %d, want %d", id, ErrDimension, len(vec), v.dim)
	}
	nv, ok := normalize(vec)
	if !ok {
		return fmt.Errorf("add %q: %w", id, ErrBadVector)
	}
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.mu.Lock()
	v.tombstoneLocked(id)
	n := v.g.insert(nv)
	v.ids = append(v.ids, id)
	v.live = append(v.live, true)
	v.byID[id] = n
	v.mu.Unlock()
	v.maybeRebuild()
	return nil
}

// IDs returns the live ids, in no particular order.
func (v *Vector) IDs() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]string, 0, len(v.byID))
	for id := range v.byID {
		out = append(out, id)
	}
	return out
}

// Remove drops id; unknown ids are ignored.
func (v *Vector) Remove(id string) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.mu.Lock()
	v.tombstoneLocked(id)
	v.mu.Unlock()
	v.maybeRebuild()
}

func (v *Vector) tombstoneLocked(id string) {
	n, ok := v.byID[id]
	if !ok {
		return
	}
	delete(v.byID, id)
	v.live[n] = false
	v.dead++
}

// maybeRebuild rebuilds the graph without tombstones once they are a third
// of it. The caller holds wmu, so nothing else changes the index while the
// new graph is built from the old one without mu; readers go on meanwhile.
func (v *Vector) maybeRebuild() {
	if v.dead == 0 || v.dead*3 < v.g.len() {
		return
	}
	g := newGraph(v.dim, v.opts.M, v.opts.EfConstruction, v.opts.Seed)
	ids := make([]string, 0, len(v.byID))
	live := make([]bool, 0, len(v.byID))
	byID := make(map[string]uint32, len(v.byID))
	for n, id := range v.ids {
		if !v.live[n] {
			continue
		}
		byID[id] = g.insert(v.g.vecs[n])
		ids = append(ids, id)
		live = append(live, true)
	}
	v.mu.Lock()
	v.g, v.ids, v.live, v.byID, v.dead = g, ids, live, byID, 0
	v.mu.Unlock()
}

// Search returns up to k ids nearest to q by cosine similarity (Hit.Score),
// best first. allow, when not nil, restricts the results to the ids it
// accepts, and k of them are returned whenever k exist.
//
// A filtered search goes one of two ways, whichever a cost estimate says is
// cheaper: the graph search walks through rejected nodes but only collects
// accepted ones (its cost grows as the filter gets more selective), or an
// exact scan asks the filter about every id and scores the accepted ones.
// The estimate uses the filter's selectivity on a sample of ids and the
// measured cost of recent graph searches. A graph search that overruns the
// cost of a scan, or finds fewer than k accepted ids, is finished by a scan.
//
// allow is called with the index read-locked and must not write to it. A
// query of the wrong dimension, or of zero length, matches nothing.
func (v *Vector) Search(q []float32, k int, allow Filter) []Hit {
	if k <= 0 || len(q) != v.dim {
		return nil
	}
	nq, ok := normalize(q)
	if !ok {
		return nil
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	live := len(v.byID)
	if live == 0 {
		return nil
	}
	if live < v.opts.ExactBelow {
		return v.exact(nq, k, allow)
	}
	ef := max(v.opts.EfSearch, k)
	if allow == nil && v.dead == 0 {
		res, computed, _ := v.g.search(nq, ef, nil, 0)
		v.cost.observe(computed, ef, 1)
		return v.hits(res, k)
	}

	// Costs in units of one distance computed by the scan.
	sel := v.selectivity(allow)
	filterCost := filterCostRatio(v.dim)
	scan := float64(v.g.len()) * (filterCost + sel)
	graph := v.cost.estimate(ef) / sel * (graphDistanceCost + filterCost)
	budget := int(scan/graphDistanceCost) + 1
	switch {
	case v.plan == planScan, v.plan == planAuto && graph > scan:
		return v.exact(nq, k, allow)
	case v.plan == planGraph:
		budget = 0
	}
	accept := func(n uint32) bool {
		return v.live[n] && (allow == nil || allow(v.ids[n]))
	}
	res, computed, complete := v.g.search(nq, ef, accept, budget)
	if complete && len(res) >= k {
		v.cost.observe(computed, ef, sel)
		return v.hits(res, k)
	}
	return v.exact(nq, k, allow)
}

// filterPlan forces one way of answering filtered searches; tests and
// benchmarks use it to measure both.
type filterPlan int

const (
	planAuto filterPlan = iota
	planGraph
	planScan
)

// graphDistanceCost is the cost of a distance computed during a graph search
// relative to one computed by the scan. Both are the same dot product, but
// the scan reads vectors in order while the graph search jumps around
// memory: with 20k–100k vectors of 384 dimensions the benchmark machine
// spends 4–6 times as long per graph distance (~220–400 ns against
// ~50–70 ns). The low end is used, which leans towards the graph.
const graphDistanceCost = 4

// filterCostRatio is the assumed cost of one Filter call relative to one
// scanned distance: a map lookup costs about as much as a 128-dimensional
// dot product.
func filterCostRatio(dim int) float64 { return 128 / float64(dim) }

// selectivity estimates the fraction of graph nodes a search may return
// (live, and accepted by allow) from an evenly spread sample of at most 256
// nodes. It never returns 0, so that costs divided by it stay finite.
func (v *Vector) selectivity(allow Filter) float64 {
	n := v.g.len()
	if allow == nil {
		return float64(len(v.byID)) / float64(n)
	}
	step := max(1, n/256)
	hits, tries := 0, 0
	for i := step / 2; i < n; i += step {
		tries++
		if v.live[i] && allow(v.ids[i]) {
			hits++
		}
	}
	return (float64(hits) + 0.5) / (float64(tries) + 1)
}

// searchCost tracks how many distances a graph search computes per unit of
// beam width, as a moving average over recent searches normalised to an
// unfiltered one (a filtered search's count times its selectivity). Searches
// run concurrently under a read lock, so it is updated atomically; a lost
// update only delays the average a little.
type searchCost struct{ bits atomic.Uint64 }

// initialCostPerEf seeds the average before any search has been measured:
// unfiltered searches of 100k 384-dimensional vectors computed 21 (embedding-
// like data) to 30 (uniformly random data) distances per unit of ef.
const initialCostPerEf = 25

func (c *searchCost) estimate(ef int) float64 {
	per := math.Float64frombits(c.bits.Load())
	if per == 0 {
		per = initialCostPerEf
	}
	return per * float64(ef)
}

func (c *searchCost) observe(computed, ef int, sel float64) {
	sample := float64(computed) * sel / float64(ef)
	old := math.Float64frombits(c.bits.Load())
	if old == 0 {
		old = sample
	}
	c.bits.Store(math.Float64bits(old + (sample-old)/16))
}

// exact scores every live, allowed node. The filter goes first: a call to
// it is cheaper than a distance.
func (v *Vector) exact(q []float32, k int, allow Filter) []Hit {
	top := newTopK(k)
	for n, id := range v.ids {
		if !v.live[n] || (allow != nil && !allow(id)) {
			continue
		}
		top.push(Hit{ID: id, Score: float64(dot(q, v.g.vecs[n]))})
	}
	return top.sorted()
}

// hits turns graph results into the k best hits, ties broken by id.
func (v *Vector) hits(res []cand, k int) []Hit {
	top := newTopK(k)
	for _, c := range res {
		if !v.live[c.node] {
			continue
		}
		top.push(Hit{ID: v.ids[c.node], Score: float64(-c.dist)})
	}
	return top.sorted()
}

// normalize returns a unit-length copy of vec, or false for a vector of
// zero length or with a NaN or infinite component.
func normalize(vec []float32) ([]float32, bool) {
	var ss float64
	for _, x := range vec {
		ss += float64(x) * float64(x)
	}
	if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
		return nil, false
	}
	inv := 1 / math.Sqrt(ss)
	out := make([]float32, len(vec))
	for i, x := range vec {
		out[i] = float32(float64(x) * inv)
	}
	return out, true
}
