package actors

import (
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"go.uber.org/zap"
)

// caseEntry is casemgr's record of one active (or stopping) case.
type caseEntry struct {
	pid         *actor.PID
	gen         uint64
	lastActive  int64 // unix nanoseconds; a time.Time costs 16 more bytes per case
	passivating bool
	// buffered holds requests that arrived while the case was stopping; a
	// pointer, because almost every entry never needs one.
	buffered *[]*request
}

func (e *caseEntry) buffer(r *request) {
	if e.buffered == nil {
		e.buffered = new([]*request)
	}
	*e.buffered = append(*e.buffered, r)
}

// takeBuffered empties the buffer and returns what it held.
func (e *caseEntry) takeBuffered() []*request {
	if e.buffered == nil {
		return nil
	}
	b := *e.buffered
	e.buffered = nil
	return b
}

// casemgr supervises one actor per active case. Every request for a case goes
// through it, which is what makes activation race-free: while a case is
// stopping, requests for it are buffered here and handed, in order, to the
// next incarnation once the old one has fully stopped.
type casemgr struct {
	d        *caseDeps
	cases    map[string]*caseEntry
	gen      uint64
	degraded *sync.Map // case id → true; read by Cases without the actor
	repeater actor.SendRepeater
	ticking  bool
	// drained is set by drain: casemgr then refuses new requests and closes
	// it once every case actor has stopped.
	drained chan struct{}
}

func newCasemgr(d *caseDeps, degraded *sync.Map) actor.Producer {
	return func() actor.Receiver {
		return &casemgr{d: d, cases: map[string]*caseEntry{}, degraded: degraded}
	}
}

func (m *casemgr) Receive(ctx *actor.Context) {
	switch msg := ctx.Message().(type) {
	case actor.Started:
		interval := m.d.caseIdle / 4
		if interval > time.Minute {
			interval = time.Minute
		}
		if interval < time.Millisecond {
			interval = time.Millisecond
		}
		m.repeater = ctx.SendRepeat(ctx.PID(), tick{}, interval)
		m.ticking = true
	case actor.Stopped:
		if m.ticking {
			m.repeater.Stop()
			m.ticking = false
		}
	case *request:
		m.route(ctx, msg)
	case tick:
		m.sweep(ctx)
	case *caseIdle:
		m.onIdle(ctx, msg)
	case *caseStopped:
		m.onStopped(ctx, msg)
	case *caseRestarted:
		m.onRestarted(ctx, msg)
	case *drain:
		m.drain(ctx, msg)
	}
}

// drain stops every case actor itself and reports when all have stopped.
// Hollywood would stop children when casemgr is poisoned, but a child that is
// already stopping can miss that second poison pill and the wait never ends;
// draining first leaves casemgr childless before it is poisoned.
func (m *casemgr) drain(ctx *actor.Context, msg *drain) {
	if m.drained != nil {
		return
	}
	m.drained = msg.done
	for _, e := range m.cases {
		for _, r := range e.takeBuffered() {
			r.respond(nil, ErrStopped)
		}
		if !e.passivating {
			e.passivating = true
			ctx.Engine().Poison(e.pid)
		}
	}
	if len(m.cases) == 0 {
		close(m.drained)
	}
}

func (m *casemgr) route(ctx *actor.Context, r *request) {
	if m.drained != nil {
		r.respond(nil, ErrStopped)
		return
	}
	if _, bad := m.degraded.Load(r.caseID); bad {
		r.respond(nil, ErrDegraded)
		return
	}
	e := m.cases[r.caseID]
	if e == nil {
		e = m.activate(ctx, r.caseID)
	}
	if e.passivating {
		e.buffer(r)
		return
	}
	e.lastActive = m.d.now().UnixNano()
	ctx.Send(e.pid, r)
}

func (m *casemgr) activate(ctx *actor.Context, id string) *caseEntry {
	m.gen++
	rt := &caseRuntime{}
	// The actor id is the case id alone: hollywood removes a stopped actor
	// from its registry before our caseStopped arrives, so the next
	// incarnation can reuse it; gen tells incarnations apart in messages.
	// Case actors are spawned at the top level, not as hollywood children
	// of casemgr: casemgr supervises them itself (activation, passivation,
	// restart counting, drain), a child map entry would cost every idle
	// case ~60 bytes, and hollywood's child cleanup can hang on a child
	// that is already stopping (ADR 0002).
	pid := ctx.Engine().Spawn(newCaseActor(id, m.gen, m.d, rt), "case",
		actor.WithID(id),
		actor.WithInboxSize(m.d.inboxSize),
		// Hollywood's own limit crashes the process when exceeded (upstream
		// issue #196): keep it out of reach and escalate ourselves.
		actor.WithMaxRestarts(1<<30),
		actor.WithRestartDelay(m.d.restartDelay),
	)
	e := &caseEntry{pid: pid, gen: m.gen, lastActive: m.d.now().UnixNano()}
	m.cases[id] = e
	m.d.metrics.activations.Inc()
	m.d.metrics.active.Set(float64(len(m.cases)))
	return e
}

// sweep asks every case idle for longer than caseIdle whether it may stop.
func (m *casemgr) sweep(ctx *actor.Context) {
	now := m.d.now().UnixNano()
	for _, e := range m.cases {
		if !e.passivating && time.Duration(now-e.lastActive) >= m.d.caseIdle {
			ctx.Send(e.pid, &passivateQuery{})
		}
	}
}

func (m *casemgr) onIdle(ctx *actor.Context, msg *caseIdle) {
	e := m.cases[msg.id]
	if e == nil || e.gen != msg.gen || e.passivating {
		return
	}
	if !msg.force && time.Duration(m.d.now().UnixNano()-e.lastActive) < m.d.caseIdle {
		return // used again since the query went out
	}
	e.passivating = true
	ctx.Engine().Poison(e.pid)
}

func (m *casemgr) onStopped(ctx *actor.Context, msg *caseStopped) {
	e := m.cases[msg.id]
	if e == nil || e.gen != msg.gen {
		return
	}
	delete(m.cases, msg.id)
	m.d.metrics.passivations.Inc()
	m.d.metrics.active.Set(float64(len(m.cases)))
	if m.drained != nil {
		if len(m.cases) == 0 {
			close(m.drained)
		}
		return
	}
	// Requests that arrived while it was stopping: bring the case back and
	// hand them over in arrival order.
	for _, r := range e.takeBuffered() {
		m.route(ctx, r)
	}
}

func (m *casemgr) onRestarted(ctx *actor.Context, msg *caseRestarted) {
	e := m.cases[msg.id]
	if e == nil || e.gen != msg.gen {
		return
	}
	m.d.metrics.restarts.Inc()
	m.d.log.Warn("case actor restarted after a panic", zap.String("case_id", msg.id), zap.Int("restarts", msg.restarts))
	if msg.restarts <= m.d.maxRestarts {
		return
	}
	// It keeps crashing: stop restarting it, keep the process alive and let
	// every caller see that the case is degraded.
	m.d.log.Error("case degraded after repeated panics", zap.String("case_id", msg.id), zap.Int("restarts", msg.restarts))
	m.degraded.Store(msg.id, true)
	m.d.metrics.degraded.Inc()
	e.passivating = true
	for _, r := range e.takeBuffered() {
		r.respond(nil, ErrDegraded)
	}
	ctx.Engine().Poison(e.pid)
}
