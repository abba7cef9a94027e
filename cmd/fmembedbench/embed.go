package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/faultmaven/faultmaven/embed/model"
	"github.com/faultmaven/faultmaven/internal/procstat"
)

// embedConfig is the embed command's flags.
type embedConfig struct {
	backend    model.Backend
	dir        string
	texts      string
	ortLib     string
	threads    int
	batch      int
	n          int // texts per throughput pass; 0: all
	passes     int
	warmPass   bool
	singles    int
	name       string
	out        string
	vectorsOut string
	vectorsRef string
	minCosine  float64
}

func runEmbed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("embed", stderr)
	var c embedConfig
	backend := fs.String("backend", "ort", "hugot or ort")
	fs.StringVar(&c.dir, "model", "", "model directory")
	fs.StringVar(&c.texts, "texts", "", "texts file written by the texts command")
	fs.StringVar(&c.ortLib, "ort-lib", "", "libonnxruntime.so (default: $FM_ORT_LIB, then the usual places)")
	fs.IntVar(&c.threads, "threads", 1, "ONNX Runtime intra-op threads (ort only)")
	fs.IntVar(&c.batch, "batch", 32, "texts per call in the throughput passes")
	fs.IntVar(&c.n, "n", 0, "texts per throughput pass, taken at an even stride (0: all)")
	fs.IntVar(&c.passes, "passes", 3, "timed throughput passes; the median is reported")
	fs.BoolVar(&c.warmPass, "warm-pass", true, "run one untimed pass before the timed ones")
	fs.IntVar(&c.singles, "singles", 200, "single-text calls, texts taken at an even stride")
	fs.StringVar(&c.name, "name", "", "row name in the report (default go-<backend>-t<threads>)")
	fs.StringVar(&c.out, "json", "", "result file (JSON)")
	fs.StringVar(&c.vectorsOut, "vectors-out", "", "write the first pass's vectors here (raw float32)")
	fs.StringVar(&c.vectorsRef, "vectors-ref", "", "compare the vectors with this file's (raw float32, one row per text)")
	fs.Float64Var(&c.minCosine, "min-cosine", 0.9999, "fail when a vector's cosine with the reference is lower")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := model.ParseBackend(*backend)
	if err != nil || b == model.Auto {
		return fmt.Errorf("-backend %q: want hugot or ort", *backend)
	}
	c.backend = b
	if c.dir == "" || c.texts == "" {
		return fmt.Errorf("-model and -texts are required")
	}
	if c.batch < 1 || c.passes < 1 || c.singles < 0 || c.threads < 1 {
		return fmt.Errorf("want -batch, -passes, -threads ≥ 1 and -singles ≥ 0")
	}
	if c.name == "" {
		c.name = fmt.Sprintf("go-%s-t%d", c.backend, c.threads)
		if c.backend == model.Hugot {
			c.name = "go-hugot"
		}
	}
	r, err := measureEmbed(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-12s %8.1f embeddings/s (batch %d, %d texts, %.2f cores)  single p50 %.1f ms p99 %.1f ms (%d calls)  peak RSS %.0f MiB\n",
		r.Name, r.EmbedsPerSec, r.Batch, r.Texts, r.CPUCores, r.SingleP50Ms, r.SingleP99Ms, r.Singles, r.PeakRSSMiB)
	if c.out != "" {
		return writeResult(c.out, r)
	}
	return nil
}

// measureEmbed opens the model, warms it, runs the throughput passes and
// the single calls, and compares or writes the vectors.
func measureEmbed(ctx context.Context, c embedConfig) (*result, error) {
	set, err := readTexts(c.texts)
	if err != nil {
		return nil, err
	}
	r := &result{Kind: "embed", Name: c.name, Runtime: "go", Backend: string(c.backend),
		Tokenization: "included", LoadAverage: loadAverage(), Batch: c.batch}
	cfg := model.Config{Dir: c.dir, Backend: c.backend, ORTLib: c.ortLib, MaxBatch: c.batch, Threads: c.threads}
	if c.backend == model.ORT {
		r.Threads = c.threads
	} else {
		// Only the shapes these texts need: one text, or a full batch, of
		// up to the model's 128 tokens (every text here has 50–120).
		cfg.BatchBuckets, cfg.SeqBuckets = []int{1, c.batch}, []int{math.MaxInt32}
	}
	start := time.Now()
	m, err := model.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if got := m.Info().Backend; got != c.backend {
		return nil, fmt.Errorf("opened %s, not %s: %s", got, c.backend, m.Info().Why)
	}
	if err := m.Warm(ctx); err != nil {
		return nil, err
	}
	r.LoadSeconds = time.Since(start).Seconds()
	r.Dim = m.Dim()

	idx := spread(len(set.Texts), c.n)
	texts := make([]string, len(idx))
	for i, j := range idx {
		texts[i] = set.Texts[j]
	}
	r.Texts = len(texts)
	pass := func() ([][]float32, time.Duration, error) {
		t0 := time.Now()
		var out [][]float32
		for s := 0; s < len(texts); s += c.batch {
			v, err := m.Embed(ctx, texts[s:min(len(texts), s+c.batch)])
			if err != nil {
				return nil, 0, err
			}
			out = append(out, v...)
		}
		return out, time.Since(t0), nil
	}
	if c.warmPass {
		if _, _, err := pass(); err != nil {
			return nil, err
		}
	}
	var vecs [][]float32
	var wall time.Duration
	cpu0 := procstat.SelfCPU()
	for p := 0; p < c.passes; p++ {
		v, d, err := pass()
		if err != nil {
			return nil, err
		}
		if vecs == nil {
			vecs = v
		}
		wall += d
		r.PassRates = append(r.PassRates, float64(len(texts))/d.Seconds())
	}
	r.CPUCores = (procstat.SelfCPU() - cpu0).Seconds() / wall.Seconds()
	r.EmbedsPerSec = median(r.PassRates)

	var singles []int
	if c.singles > 0 {
		singles = spread(len(set.Texts), c.singles)
	}
	lat := make([]time.Duration, 0, len(singles))
	for _, j := range singles {
		t0 := time.Now()
		if _, err := m.Embed(ctx, set.Texts[j:j+1]); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	r.Singles = len(lat)
	r.SingleP50Ms, r.SingleP99Ms = percentile(lat, 0.50), percentile(lat, 0.99)

	if c.vectorsOut != "" {
		if len(idx) != len(set.Texts) {
			return nil, fmt.Errorf("-vectors-out needs every text (-n 0)")
		}
		if err := writeVectors(c.vectorsOut, vecs); err != nil {
			return nil, err
		}
	}
	if c.vectorsRef != "" {
		ref, err := readVectors(c.vectorsRef, len(set.Texts))
		if err != nil {
			return nil, err
		}
		minCos, maxDiff := 1.0, 0.0
		for i, j := range idx {
			minCos = min(minCos, model.Cosine(vecs[i], ref[j]))
			for k := range vecs[i] {
				maxDiff = max(maxDiff, math.Abs(float64(vecs[i][k]-ref[j][k])))
			}
		}
		r.MinCosine, r.MaxAbsDiff = &minCos, &maxDiff
		if !(minCos >= c.minCosine) {
			return r, fmt.Errorf("%s: vectors differ from %s: lowest cosine %.6f, want ≥ %g", c.name, c.vectorsRef, minCos, c.minCosine)
		}
	}
	r.PeakRSSMiB = peakRSSMiB()
	return r, nil
}
