package model

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/knights-analytics/hugot"
	"github.com/knights-analytics/hugot/options"
	"github.com/knights-analytics/hugot/pipelines"
)

// hugotRunner runs the model through hugot's pure-Go (GoMLX) session. One
// run at a time: the pipeline is not documented as safe for concurrent use,
// and GoMLX already spreads one run over the cores.
type hugotRunner struct {
	mu       sync.Mutex
	session  *hugot.Session
	pipe     *pipelines.FeatureExtractionPipeline
	batches  []int
	seqs     []int
	maxBatch int
	closed   bool
}

// buckets returns the sorted, de-duplicated sizes in want that are ≤ limit,
// always ending with limit itself.
func buckets(want []int, limit int) []int {
	var out []int
	for _, b := range want {
		if b > 0 && b < limit {
			out = append(out, b)
		}
	}
	out = append(out, limit)
	slices.Sort(out)
	return slices.Compact(out)
}

func newHugotRunner(f Files, cfg Config) (*hugotRunner, error) {
	r := &hugotRunner{maxBatch: cfg.MaxBatch}
	r.batches = buckets(cfg.BatchBuckets, cfg.MaxBatch)
	if len(cfg.BatchBuckets) == 0 {
		r.batches = buckets([]int{1, 8}, cfg.MaxBatch)
	}
	r.seqs = buckets(cfg.SeqBuckets, f.MaxTokens)
	if len(cfg.SeqBuckets) == 0 {
		r.seqs = buckets([]int{32, 128}, f.MaxTokens)
	}
	s, err := hugot.NewGoSession(options.WithGoMLXBatchBuckets(r.batches), options.WithGoMLXSequenceBuckets(r.seqs))
	if err != nil {
		return nil, fmt.Errorf("model: hugot session: %w", err)
	}
	p, err := hugot.NewPipeline(s, hugot.FeatureExtractionConfig{
		ModelPath: f.Dir, OnnxFilename: f.Onnx, Name: "faultmaven-embed",
		Options: []hugot.FeatureExtractionOption{pipelines.WithNormalization()},
	})
	if err != nil {
		_ = s.Destroy()
		return nil, fmt.Errorf("model: load %s with hugot: %w", f.Onnx, err)
	}
	r.session, r.pipe = s, p
	return r, nil
}

func (r *hugotRunner) dim() int {
	d := r.pipe.Output.Dimensions
	if len(d) == 0 || d[len(d)-1] <= 0 {
		return 0
	}
	return int(d[len(d)-1])
}

func (r *hugotRunner) run(texts []string) (vecs [][]float32, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	// GoMLX reports some failures by panicking; turn them into errors.
	defer func() {
		if p := recover(); p != nil {
			vecs, err = nil, fmt.Errorf("model: hugot run panicked: %v", p)
		}
	}()
	out, err := r.pipe.RunPipeline(texts)
	if err != nil {
		return nil, fmt.Errorf("model: hugot run: %w", err)
	}
	return out.Embeddings, nil
}

// warm compiles every (batch, sequence) bucket: one run per bucket with a
// text long enough to land in it.
func (r *hugotRunner) warm(ctx context.Context) error {
	for _, s := range r.seqs {
		// "x " is one token each; [CLS] and [SEP] take two more.
		text := ""
		for i := 0; i < s-2; i++ {
			text += "x "
		}
		for _, b := range r.batches {
			if err := ctx.Err(); err != nil {
				return err
			}
			texts := make([]string, b)
			for i := range texts {
				texts[i] = text
			}
			if _, err := r.run(texts); err != nil {
				return fmt.Errorf("model: warm bucket batch=%d seq=%d: %w", b, s, err)
			}
		}
	}
	return nil
}

func (r *hugotRunner) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.session.Destroy()
}
