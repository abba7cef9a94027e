package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/embed/embedpool"
	"github.com/faultmaven/faultmaven/embed/model"
)

// embedding is the node's embedding stack: the model, the pool of embedder
// actors in front of it, and what /readyz says about search.
type embedding struct {
	model    *model.Model
	pool     *embedpool.Pool
	embedder embed.Embedder // nil: lexical search only
	info     model.Info
	workers  int         // embedder actors in the pool
	reason   string      // why search is lexical only, when it is
	warm     atomic.Bool // hugot has compiled its buckets
	log      *zap.Logger
}

// errWarming makes callers treat a model that is still compiling like a
// busy pool: ingestion waits, a query falls back to lexical search.
type warmingError struct{}

func (warmingError) Error() string { return "embedding model is still warming up" }
func (warmingError) Busy() bool    { return true }

// gated refuses work until the model is warm, so no request pays a compile.
type gated struct{ e *embedding }

func (g gated) Dim() int { return g.e.pool.Dim() }
func (g gated) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if !g.e.warm.Load() {
		return nil, warmingError{}
	}
	return g.e.pool.Embed(ctx, texts)
}

// startEmbedding finds and opens the embedding model. No model is not an
// error: the server runs with lexical search and says so once, here, and
// in /readyz. A model directory named explicitly that holds no model is an
// error: the operator asked for something that is not there.
func startEmbedding(cfg serveConfig, engine *actor.Engine, log *zap.Logger, reg prometheus.Registerer) (*embedding, error) {
	e := &embedding{log: log}
	modelsDir := filepath.Join(cfg.Data, "models")
	dir, err := model.Locate(cfg.EmbedModelDir, modelsDir, cfg.EmbedModel)
	if err != nil {
		if cfg.EmbedModelDir != "" {
			return nil, fmt.Errorf("--embed-model-dir (FM_EMBED_MODEL_DIR): %w", err)
		}
		e.reason = fmt.Sprintf("embedding model in %s is not usable: %v", modelsDir, err)
		log.Error("knowledge search is lexical only", zap.String("reason", e.reason))
		return e, nil
	}
	if dir == "" {
		e.reason = fmt.Sprintf("no embedding model: run 'faultmaven model pull %s' or set FM_EMBED_MODEL_DIR", cfg.EmbedModel)
		log.Warn("knowledge search is lexical only", zap.String("reason", e.reason))
		return e, nil
	}
	backend, _ := model.ParseBackend(cfg.EmbedBackend)
	m, err := model.Open(model.Config{Dir: dir, Backend: backend, ORTLib: cfg.ORTLib, Logger: log})
	if err != nil {
		e.reason = fmt.Sprintf("embedding model %s failed to load: %v", dir, err)
		log.Error("knowledge search is lexical only", zap.String("reason", e.reason))
		return e, nil
	}
	e.model, e.info = m, m.Info()
	workers := cfg.EmbedWorkers
	if workers == 0 {
		workers = 1
		if e.info.Backend == model.ORT {
			workers = runtime.NumCPU()
		}
	}
	e.workers = workers
	e.pool, err = embedpool.Start(engine, m, embedpool.Config{Workers: workers, Logger: log, Metrics: reg})
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	e.embedder = gated{e}
	log.Info("embedding model loaded", zap.String("dir", e.info.Dir), zap.String("backend", string(e.info.Backend)),
		zap.String("why", e.info.Why), zap.Int("dim", e.info.Dim), zap.Int("workers", workers))
	go e.warmUp()
	return e, nil
}

// warmUp compiles the model's shapes in the background; until it is done
// ingestion waits and queries are lexical.
func (e *embedding) warmUp() {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := e.model.Warm(ctx); err != nil && !errors.Is(err, model.ErrClosed) {
		e.log.Error("embedding model warm-up failed; continuing (a request may pay a compilation)", zap.Error(err))
	}
	e.warm.Store(true)
	e.log.Info("embedding model ready", zap.Duration("warm_up", time.Since(start)))
}

// stop stops the pool, then closes the model.
func (e *embedding) stop() {
	if e.pool != nil {
		e.pool.Stop()
	}
	if e.model != nil {
		_ = e.model.Close()
	}
}

// searchStatus is /readyz's "search" component.
type searchStatus struct {
	Mode    string `json:"mode"` // hybrid, warming or lexical
	Reason  string `json:"reason,omitempty"`
	Backend string `json:"backend,omitempty"`
	Model   string `json:"model,omitempty"`
	Vectors int    `json:"vectors"`
	Chunks  int    `json:"chunks"`
}

func (e *embedding) status(kb *embed.KB) searchStatus {
	s := searchStatus{Mode: "lexical", Reason: e.reason}
	if kb != nil {
		v := kb.Vectors()
		s.Vectors, s.Chunks = v.Vectors, v.Chunks
	}
	if e.embedder == nil {
		return s
	}
	s.Backend, s.Model, s.Reason = string(e.info.Backend), e.info.Dir, e.info.Why
	s.Mode = "hybrid"
	if !e.warm.Load() {
		s.Mode = "warming"
	}
	return s
}
