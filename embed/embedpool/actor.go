package embedpool

import (
	"github.com/anthdm/hollywood/actor"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/embed/embedpb"
)

// pending is a request in the queue or in flight.
type pending struct {
	req       *request
	next      int // index of the first text not yet handed to an embedder
	remaining int // texts without a vector yet
	vectors   []*embedpb.Vector
	failed    bool
}

func (p *pending) cancelled() bool {
	select {
	case <-p.req.done:
		return true
	default:
		return false
	}
}

// part is a run of one request's texts inside a batch.
type part struct {
	p          *pending
	from, size int
}

// poolActor owns the queue. It never blocks: embedders do the work.
type poolActor struct {
	cfg      Config
	m        *metrics
	idle     []*actor.PID
	busy     map[uint64]*actor.PID // batch id → embedder running it
	inflight map[uint64][]part
	queue    []*pending // head first; the head may be partly dispatched
	queued   int        // texts in the queue not yet dispatched
	nextID   uint64
	stopping bool
}

func newPoolActor(cfg Config, m *metrics) *poolActor {
	return &poolActor{cfg: cfg, m: m, busy: map[uint64]*actor.PID{}, inflight: map[uint64][]part{}}
}

func (a *poolActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case *addWorkers:
		a.idle = append(a.idle, msg.pids...)
		a.dispatch(c)
	case *request:
		a.admit(c, msg)
	case *embedpb.BatchResult:
		a.complete(c, msg)
	case *statsQuery:
		msg.reply <- Stats{Queued: a.queued, Busy: len(a.busy), Workers: len(a.idle) + len(a.busy)}
	case actor.Stopped:
		a.stopping = true
		for _, p := range a.queue {
			a.fail(p, embedpb.Code_CODE_CLOSED, "embedding pool stopped")
		}
		for _, parts := range a.inflight {
			for _, pt := range parts {
				a.fail(pt.p, embedpb.Code_CODE_CLOSED, "embedding pool stopped")
			}
		}
		a.queue, a.queued, a.inflight = nil, 0, map[uint64][]part{}
		a.m.queue(0)
	}
}

// admit queues a request, or refuses it when the queue is full.
func (a *poolActor) admit(c *actor.Context, r *request) {
	n := len(r.msg.GetTexts())
	if a.stopping {
		r.reply <- &embedpb.EmbedResponse{RequestId: r.msg.GetRequestId(), Code: embedpb.Code_CODE_CLOSED, Error: "embedding pool stopped"}
		return
	}
	if a.queued+n > a.cfg.MaxQueued {
		a.m.rejected()
		r.reply <- &embedpb.EmbedResponse{RequestId: r.msg.GetRequestId(), Code: embedpb.Code_CODE_BUSY, Error: "queue full"}
		return
	}
	a.queue = append(a.queue, &pending{req: r, remaining: n, vectors: make([]*embedpb.Vector, n)})
	a.queued += n
	a.m.queue(a.queued)
	a.dispatch(c)
}

// dispatch gives each idle embedder a batch from the head of the queue.
func (a *poolActor) dispatch(c *actor.Context) {
	for len(a.idle) > 0 && len(a.queue) > 0 {
		var parts []part
		var texts []string
		for len(a.queue) > 0 && len(texts) < a.cfg.MaxBatch {
			p := a.queue[0]
			left := len(p.req.msg.GetTexts()) - p.next
			if p.failed || p.cancelled() {
				// The caller gave up (or an earlier batch failed): skip the rest.
				a.queued -= left
				p.failed = true
				a.queue = a.queue[1:]
				continue
			}
			take := min(left, a.cfg.MaxBatch-len(texts))
			texts = append(texts, p.req.msg.GetTexts()[p.next:p.next+take]...)
			parts = append(parts, part{p: p, from: p.next, size: take})
			p.next += take
			a.queued -= take
			if p.next == len(p.req.msg.GetTexts()) {
				a.queue = a.queue[1:]
			}
		}
		a.m.queue(a.queued)
		if len(texts) == 0 {
			return
		}
		a.nextID++
		w := a.idle[len(a.idle)-1]
		a.idle = a.idle[:len(a.idle)-1]
		a.busy[a.nextID] = w
		a.inflight[a.nextID] = parts
		a.m.batch(len(texts))
		c.Send(w, &embedpb.Batch{BatchId: a.nextID, Texts: texts})
	}
}

// complete distributes a batch's vectors to its requests and answers every
// request that is now whole.
func (a *poolActor) complete(c *actor.Context, res *embedpb.BatchResult) {
	id := res.GetBatchId()
	w, ok := a.busy[id]
	if !ok {
		return // a result for a batch failed by Stopped
	}
	delete(a.busy, id)
	a.idle = append(a.idle, w)
	parts := a.inflight[id]
	delete(a.inflight, id)
	a.m.took(res.GetMicros())
	if res.GetError() != "" {
		a.m.failedBatch()
		a.cfg.Logger.Warn("embedding batch failed", zap.String("error", res.GetError()), zap.Int("texts", len(res.GetVectors())))
		for _, pt := range parts {
			a.fail(pt.p, embedpb.Code_CODE_FAILED, res.GetError())
		}
		a.dispatch(c)
		return
	}
	at := 0
	for _, pt := range parts {
		if pt.p.failed {
			at += pt.size
			continue
		}
		copy(pt.p.vectors[pt.from:], res.GetVectors()[at:at+pt.size])
		at += pt.size
		pt.p.remaining -= pt.size
		if pt.p.remaining == 0 {
			a.m.texts(len(pt.p.vectors))
			pt.p.req.reply <- &embedpb.EmbedResponse{RequestId: pt.p.req.msg.GetRequestId(), Vectors: pt.p.vectors}
		}
	}
	a.dispatch(c)
}

// fail answers a request with an error, once.
func (a *poolActor) fail(p *pending, code embedpb.Code, msg string) {
	if p.failed {
		return
	}
	p.failed = true
	p.req.reply <- &embedpb.EmbedResponse{RequestId: p.req.msg.GetRequestId(), Code: code, Error: msg}
}
