// Package embedpool runs embedding as actors: one pool actor ("embedpool")
// routes batches to N embedder actors ("embedder/<i>"), each of which runs
// the model one batch at a time.
//
// The pool keeps a bounded queue of texts. A request that would overflow it
// is refused at once with ErrBusy (backpressure instead of unbounded
// memory). Whenever an embedder is idle the pool gives it up to MaxBatch
// texts from the head of the queue — texts of several small concurrent
// requests share one batch — and hands each request its vectors once all
// of its texts are done. Requests whose caller has gone are dropped from
// the queue.
//
// Batches and their results are protobuf (embed/embedpb), so an embedder
// may later run on another node; the caller-side request, which carries a
// reply channel (docs/adr/0001), never leaves this node.
//
// The embedder actors are spawned at the top level and stopped by Stop
// before the pool (docs/adr/0002: hollywood v1.0.5 can hang when a parent
// stops while a child is stopping).
package embedpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/embed/embedpb"
)

// Errors returned by Embed.
var (
	ErrBusy    error = busyError{}
	ErrClosed        = errors.New("embedpool: stopped")
	ErrInvalid       = errors.New("embedpool: invalid request")
	ErrFailed        = errors.New("embedpool: embedding failed")
)

// busyError is ErrBusy. Its Busy method lets callers that must not import
// this package (the knowledge base) recognise it.
type busyError struct{}

func (busyError) Error() string { return "embedpool: busy, too many texts waiting; retry later" }
func (busyError) Busy() bool    { return true }

// Model is what an embedder actor runs.
type Model interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dim() int
}

// Config configures Start. Zero fields take the defaults.
type Config struct {
	Workers   int // embedder actors; default runtime.NumCPU()
	MaxBatch  int // texts per batch; default 32
	MaxQueued int // texts waiting in the queue before callers get ErrBusy; default 4096
	// MaxTexts is the most texts one request may carry; default MaxQueued.
	MaxTexts int
	Logger   *zap.Logger
	Metrics  prometheus.Registerer // nil: no metrics
}

func (c *Config) ensureDefaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 32
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 4096
	}
	if c.MaxTexts <= 0 || c.MaxTexts > c.MaxQueued {
		c.MaxTexts = c.MaxQueued
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Pool is the handle callers use. It implements embed.Embedder.
type Pool struct {
	engine  *actor.Engine
	pid     *actor.PID
	workers []*actor.PID
	dim     int
	cfg     Config
	m       *metrics
	nextID  atomic.Uint64
	stopped atomic.Bool
	stop    sync.Once
}

// Start spawns the pool and its embedder actors on engine.
func Start(engine *actor.Engine, model Model, cfg Config) (*Pool, error) {
	if engine == nil || model == nil {
		return nil, fmt.Errorf("%w: engine and model are required", ErrInvalid)
	}
	cfg.ensureDefaults()
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	p := &Pool{engine: engine, dim: model.Dim(), cfg: cfg, m: m}
	p.pid = engine.Spawn(func() actor.Receiver { return newPoolActor(cfg, m) }, "embedpool",
		actor.WithInboxSize(256), actor.WithMaxRestarts(1<<30))
	for i := 0; i < cfg.Workers; i++ {
		w := engine.Spawn(func() actor.Receiver { return &embedder{model: model, pool: p.pid, log: cfg.Logger} },
			"embedder", actor.WithID(strconv.Itoa(i+1)), actor.WithInboxSize(4), actor.WithMaxRestarts(1<<30))
		p.workers = append(p.workers, w)
	}
	engine.Send(p.pid, &addWorkers{pids: p.workers})
	return p, nil
}

// Dim is the length of every vector.
func (p *Pool) Dim() int { return p.dim }

// Embed returns one vector per text, in order. It fails fast with ErrBusy
// when the queue is full, and returns ctx's error if ctx ends first.
func (p *Pool) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if p.stopped.Load() {
		return nil, ErrClosed
	}
	if len(texts) == 0 {
		return nil, nil
	}
	if len(texts) > p.cfg.MaxTexts {
		return nil, fmt.Errorf("%w: %d texts in one request, at most %d", ErrInvalid, len(texts), p.cfg.MaxTexts)
	}
	req := &request{
		msg:   &embedpb.EmbedRequest{RequestId: strconv.FormatUint(p.nextID.Add(1), 10), Texts: texts},
		reply: make(chan *embedpb.EmbedResponse, 1),
		done:  ctx.Done(),
	}
	p.engine.Send(p.pid, req)
	select {
	case resp := <-req.reply:
		return decode(resp, len(texts))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// decode turns a response into vectors or the matching error.
func decode(resp *embedpb.EmbedResponse, n int) ([][]float32, error) {
	switch resp.GetCode() {
	case embedpb.Code_CODE_OK:
	case embedpb.Code_CODE_BUSY:
		return nil, ErrBusy
	case embedpb.Code_CODE_CLOSED:
		return nil, ErrClosed
	case embedpb.Code_CODE_INVALID:
		return nil, fmt.Errorf("%w: %s", ErrInvalid, resp.GetError())
	default:
		return nil, fmt.Errorf("%w: %s", ErrFailed, resp.GetError())
	}
	if len(resp.GetVectors()) != n {
		return nil, fmt.Errorf("%w: %d vectors for %d texts", ErrFailed, len(resp.GetVectors()), n)
	}
	out := make([][]float32, n)
	for i, v := range resp.GetVectors() {
		out[i] = v.GetValues()
	}
	return out, nil
}

// Stop refuses new requests, fails the queued ones with ErrClosed, and
// stops the embedder actors (each finishes its current batch) and then the
// pool. Safe to call more than once.
func (p *Pool) Stop() {
	p.stop.Do(func() {
		p.stopped.Store(true)
		for _, w := range p.workers {
			<-p.engine.Poison(w).Done()
		}
		<-p.engine.Poison(p.pid).Done()
	})
}

// Stats is a snapshot of the pool for tests and /readyz.
type Stats struct {
	Queued  int `json:"queued"`  // texts waiting
	Busy    int `json:"busy"`    // embedders running a batch
	Workers int `json:"workers"` // embedders
}

// Stats asks the pool actor for a snapshot.
func (p *Pool) Stats(ctx context.Context) (Stats, error) {
	if p.stopped.Load() {
		return Stats{}, ErrClosed
	}
	q := &statsQuery{reply: make(chan Stats, 1)}
	p.engine.Send(p.pid, q)
	select {
	case s := <-q.reply:
		return s, nil
	case <-ctx.Done():
		return Stats{}, ctx.Err()
	}
}

// request is a caller's request inside this node.
type request struct {
	msg   *embedpb.EmbedRequest
	reply chan *embedpb.EmbedResponse // capacity 1, answered once
	done  <-chan struct{}             // the caller's context
}

type statsQuery struct{ reply chan Stats }

type addWorkers struct{ pids []*actor.PID }

// embedder runs batches. It always answers a batch, even when the model
// panics, so the pool never waits for a result that will not come.
type embedder struct {
	model Model
	pool  *actor.PID
	log   *zap.Logger
}

func (e *embedder) Receive(c *actor.Context) {
	b, ok := c.Message().(*embedpb.Batch)
	if !ok {
		return
	}
	c.Send(e.pool, e.run(b))
}

func (e *embedder) run(b *embedpb.Batch) (res *embedpb.BatchResult) {
	res = &embedpb.BatchResult{BatchId: b.GetBatchId()}
	start := time.Now()
	defer func() {
		res.Micros = time.Since(start).Microseconds()
		if p := recover(); p != nil {
			e.log.Error("embedder panicked", zap.Any("panic", p), zap.Int("texts", len(b.GetTexts())))
			res.Vectors, res.Error = nil, fmt.Sprintf("embedder panicked: %v", p)
		}
	}()
	vecs, err := e.model.Embed(context.Background(), b.GetTexts())
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if len(vecs) != len(b.GetTexts()) {
		res.Error = fmt.Sprintf("model returned %d vectors for %d texts", len(vecs), len(b.GetTexts()))
		return res
	}
	res.Vectors = make([]*embedpb.Vector, len(vecs))
	for i, v := range vecs {
		res.Vectors[i] = &embedpb.Vector{Values: v}
	}
	return res
}
