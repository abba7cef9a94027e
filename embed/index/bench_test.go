package index

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmarks below are measurement harnesses for docs/benchmarks.md, not
// loops over b.N: each does its work once and reports latency percentiles,
// recall and build time as custom metrics. Run them with
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 60m ./embed/index/
//
// Environment knobs, all optional: FM_BENCH_SIZES (e.g. "10000"),
// FM_BENCH_DATA ("random" or "latent"), FM_BENCH_EF (an efSearch sweep, e.g.
// "64,256"), FM_BENCH_M and FM_BENCH_EFC (build options).

const (
	benchDim     = 384 // all-MiniLM-L6-v2
	benchQueries = 1000
	benchK       = 10
)

// benchData generates vectors for the vector benchmarks.
type benchData struct {
	name string
	// source returns a generator of vectors; all vectors and queries of a
	// run come from one source.
	source func(r *rand.Rand) func() []float32
}

var benchDatasets = []benchData{
	// Uniform on the sphere: no structure at all, the worst case for any
	// approximate index (every point is almost equally far from every
	// other). This is the data the targets are stated on.
	{"random", func(r *rand.Rand) func() []float32 {
		return func() []float32 { return randomUnit(r, benchDim) }
	}},
	// Embedding-like: 24 latent factors projected to 384 dimensions by a
	// fixed random matrix, plus isotropic noise carrying ~20% of the
	// energy. Real sentence embeddings likewise occupy a low-dimensional
	// region of their space; this is a stand-in, not a real corpus.
	{"latent", func(r *rand.Rand) func() []float32 {
		const latent = 24
		proj := make([][]float32, benchDim)
		for i := range proj {
			proj[i] = make([]float32, latent)
			for j := range proj[i] {
				proj[i][j] = float32(r.NormFloat64() / math.Sqrt(latent))
			}
		}
		return func() []float32 {
			z := make([]float32, latent)
			for j := range z {
				z[j] = float32(r.NormFloat64())
			}
			x := make([]float32, benchDim)
			for i := range x {
				x[i] = dot(proj[i], z) + float32(0.5*r.NormFloat64())
			}
			x, _ = normalize(x)
			return x
		}
	}},
}

func BenchmarkVectorIndex(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if s := envInts(b, "FM_BENCH_SIZES"); s != nil {
		sizes = s
	}
	for _, ds := range benchDatasets {
		if want := os.Getenv("FM_BENCH_DATA"); want != "" && want != ds.name {
			continue
		}
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/n=%d", ds.name, n), func(b *testing.B) { benchVector(b, n, ds) })
		}
	}
}

func benchVector(b *testing.B, n int, ds benchData) {
	seed := time.Now().UnixNano()
	b.Logf("seed %d", seed)
	next := ds.source(rand.New(rand.NewSource(seed)))
	vecs := make([][]float32, n)
	for i := range vecs {
		vecs[i] = next()
	}
	queries := make([][]float32, benchQueries)
	for i := range queries {
		queries[i] = next()
	}
	// Every tenth id is visible to the filtered searches.
	allowed := make(map[string]bool, n/10)
	for i := 0; i < n; i += 10 {
		allowed[benchID(i)] = true
	}
	allow := func(id string) bool { return allowed[id] }

	var opts VectorOptions
	if m := envInts(b, "FM_BENCH_M"); m != nil {
		opts.M = m[0]
	}
	if efc := envInts(b, "FM_BENCH_EFC"); efc != nil {
		opts.EfConstruction = efc[0]
	}
	v := NewVector(benchDim, opts)
	start := time.Now()
	for i, vec := range vecs {
		if err := v.Add(benchID(i), vec); err != nil {
			b.Fatal(err)
		}
	}
	build := time.Since(start)
	b.ReportMetric(build.Seconds(), "build-s")
	b.Logf("%s n=%d M=%d efC=%d: build %s", ds.name, n, v.opts.M, v.opts.EfConstruction, build.Round(time.Millisecond))

	truth := exactTopK(vecs, queries, benchK, nil)
	truthFiltered := exactTopK(vecs, queries, benchK, func(i int) bool { return i%10 == 0 })
	shipped := v.opts
	row := func(label string) (p50, p99 time.Duration, recall float64, fp50, fp99 time.Duration, frecall float64) {
		p50, p99, recall = measureVector(v, queries, truth, nil)
		fp50, fp99, frecall = measureVector(v, queries, truthFiltered, allow)
		b.Logf("  %-22s p50 %8s  p99 %8s  recall@10 %.4f | 10%% allowed: p50 %8s  p99 %8s  recall@10 %.4f",
			label, p50.Round(time.Microsecond), p99.Round(time.Microsecond), recall,
			fp50.Round(time.Microsecond), fp99.Round(time.Microsecond), frecall)
		return
	}

	p50, p99, recall, fp50, fp99, frecall := row("defaults")
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(recall, "recall@10")
	b.ReportMetric(float64(fp50.Microseconds()), "filtered-p50-µs")
	b.ReportMetric(float64(fp99.Microseconds()), "filtered-p99-µs")
	b.ReportMetric(frecall, "filtered-recall@10")

	b.Logf("  graph search cost: %.1f distances per unit of ef", v.cost.estimate(1))
	v.opts.ExactBelow = math.MaxInt
	row("exact scan")
	v.opts.ExactBelow, v.plan = -1, planGraph
	for _, ef := range append([]int{shipped.EfSearch}, envInts(b, "FM_BENCH_EF")...) {
		v.opts.EfSearch = ef
		row(fmt.Sprintf("graph only, ef=%d", ef))
	}
	v.opts, v.plan = shipped, planAuto
}

// measureVector runs every query once and returns latency percentiles and
// mean recall against truth.
func measureVector(v *Vector, queries [][]float32, truth [][]string, allow Filter) (p50, p99 time.Duration, recall float64) {
	lat := make([]time.Duration, len(queries))
	found := 0
	for i, q := range queries {
		start := time.Now()
		hits := v.Search(q, benchK, allow)
		lat[i] = time.Since(start)
		for _, h := range hits {
			if slices.Contains(truth[i], h.ID) {
				found++
			}
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], float64(found) / float64(len(queries)*benchK)
}

// exactTopK is the brute-force ground truth, split over two goroutines.
func exactTopK(vecs, queries [][]float32, k int, keep func(int) bool) [][]string {
	out := make([][]string, len(queries))
	var wg sync.WaitGroup
	const workers = 2
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for qi := w; qi < len(queries); qi += workers {
				top := newTopK(k)
				for i, vec := range vecs {
					if keep == nil || keep(i) {
						top.push(Hit{ID: benchID(i), Score: float64(dot(queries[qi], vec))})
					}
				}
				for _, h := range top.sorted() {
					out[qi] = append(out[qi], h.ID)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func benchID(i int) string { return "chunk-" + strconv.Itoa(i) }

// BenchmarkLexicalIndex measures BM25 search over a synthetic corpus of 100k
// chunks of ~150 words drawn from a Zipf distribution over a 50k-word
// vocabulary (so a few words are in most chunks and most words are rare, as
// in real text). Queries are three words from the same distribution.
func BenchmarkLexicalIndex(b *testing.B) {
	const (
		docs      = 100_000
		docWords  = 150
		vocabSize = 50_000
		qWords    = 3
	)
	seed := time.Now().UnixNano()
	b.Logf("seed %d", seed)
	r := rand.New(rand.NewSource(seed))
	vocab := make([]string, vocabSize)
	for i := range vocab {
		vocab[i] = syntheticWord(r)
	}
	zipf := rand.NewZipf(r, 1.1, 2, vocabSize-1)
	text := func(words int) string {
		var sb strings.Builder
		for i := 0; i < words; i++ {
			sb.WriteString(vocab[zipf.Uint64()])
			sb.WriteByte(' ')
		}
		return sb.String()
	}
	l := NewLexical()
	start := time.Now()
	for i := 0; i < docs; i++ {
		l.Add(benchID(i), text(docWords-20+r.Intn(41)))
	}
	build := time.Since(start)

	lat := make([]time.Duration, benchQueries)
	for i := range lat {
		q := text(qWords)
		start := time.Now()
		l.Search(q, benchK, nil)
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	b.Logf("docs=%d vocab=%d terms=%d build=%s | p50=%s p99=%s", docs, vocabSize, len(l.vocab), build.Round(time.Millisecond), lat[len(lat)/2], lat[len(lat)*99/100])
	b.ReportMetric(build.Seconds(), "build-s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// syntheticWord returns a lowercase word of 4–10 letters.
func syntheticWord(r *rand.Rand) string {
	b := make([]byte, 4+r.Intn(7))
	for i := range b {
		b[i] = byte('a' + r.Intn(26))
	}
	return string(b)
}

func envInts(tb testing.TB, name string) []int {
	s := os.Getenv(name)
	if s == "" {
		return nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		out = append(out, x)
	}
	return out
}
