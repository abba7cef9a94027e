package actors

import (
	"errors"
	"fmt"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// ErrSlowSubscriber means a subscriber could not take the replay.
var ErrSlowSubscriber = errors.New("actors: subscriber too slow")

// caseRuntime is the part of a case actor that survives restarts of one
// incarnation (the producer closure holds it): hollywood builds a fresh
// receiver after a panic, but subscribers, the in-flight turn and the restart
// count must not be forgotten.
type caseRuntime struct {
	starts int
	subs   map[Subscriber]struct{}
	turn   *turnRun
	turns  *caseTurns // nil until the activation's first turn: a pointer keeps idle cases small
}

// caseTurns is what a case keeps between turns once it has run one in this
// activation: the turns waiting for the running one and its conversation.
type caseTurns struct {
	queue []queuedTurn
	hist  *historyCache
}

// turnState returns rt.turns, made on first use.
func (rt *caseRuntime) turnState() *caseTurns {
	if rt.turns == nil {
		rt.turns = &caseTurns{}
	}
	return rt.turns
}

// subsChanged refreshes the running turn's copy of subs (turnRun.live)
// after a change to subs; without a running turn there is none to keep.
func (rt *caseRuntime) subsChanged() {
	if rt.turn != nil {
		rt.turn.live.Store(rt.liveSubs())
	}
}

// liveSubs is a copy of subs for a turn to deliver its deltas to.
func (rt *caseRuntime) liveSubs() *[]Subscriber {
	if len(rt.subs) == 0 {
		return nil
	}
	l := make([]Subscriber, 0, len(rt.subs))
	for s := range rt.subs {
		l = append(l, s)
	}
	return &l
}

func (rt *caseRuntime) queued() int {
	if rt.turns == nil {
		return 0
	}
	return len(rt.turns.queue)
}

// caseActor is the thin shell around caseState: it loads the state lazily
// from Pebble (so spawning is cheap and never blocks casemgr), turns requests
// into events with the pure decide functions, persists them with Sync, folds
// them in, answers, and publishes the events to subscribers.
type caseActor struct {
	id  string
	gen uint64
	d   *caseDeps
	rt  *caseRuntime

	state     *caseState
	deleted   bool
	panicking bool
	current   *request
}

func newCaseActor(id string, gen uint64, d *caseDeps, rt *caseRuntime) actor.Producer {
	return func() actor.Receiver {
		return &caseActor{id: id, gen: gen, d: d, rt: rt}
	}
}

func (a *caseActor) Receive(ctx *actor.Context) {
	defer func() {
		if v := recover(); v != nil {
			// Make the failure visible to whoever is waiting, then let
			// hollywood restart us (a fresh receiver reloads from Pebble).
			a.panicking = true
			if a.current != nil {
				a.current.respond(nil, fmt.Errorf("%w: %v", ErrCaseFailed, v))
			}
			a.d.log.Error("case actor panicked", zap.String("case_id", a.id), zap.Any("panic", v))
			panic(v)
		}
	}()
	switch m := ctx.Message().(type) {
	case actor.Started:
		a.rt.starts++
		if a.rt.starts > 1 {
			if a.rt.turn != nil {
				// The turn's answer can no longer be trusted to land; the
				// reload marks it failed so the client can retry.
				a.rt.turn.cancel()
				a.rt.turn = nil
			}
			// Queued turns are failed by the reload like the running one
			// (failOpenTurns); the history cache is rebuilt at the next turn.
			a.rt.turns = nil
			ctx.Send(a.d.mgr, &caseRestarted{id: a.id, gen: a.gen, restarts: a.rt.starts - 1})
		}
	case actor.Stopped:
		if !a.panicking {
			if a.rt.turn != nil {
				a.rt.turn.cancel()
			}
			ctx.Send(a.d.mgr, &caseStopped{id: a.id, gen: a.gen})
		}
	case *request:
		a.current = m
		a.handle(ctx, m)
		a.current = nil
	case *droppedSubscriber:
		if _, ok := a.rt.subs[m.sub]; ok {
			delete(a.rt.subs, m.sub)
			a.rt.subsChanged()
			a.d.metrics.slowSubscribers.Inc()
		}
	case *turnFinished:
		a.onTurnFinished(ctx, m)
	case *passivateQuery:
		if a.deleted || (a.rt.turn == nil && a.rt.queued() == 0 && len(a.rt.subs) == 0) {
			ctx.Send(a.d.mgr, &caseIdle{id: a.id, gen: a.gen, force: a.deleted})
		}
	}
}

// load makes sure the state is in memory, closing turns a crash left open.
func (a *caseActor) load(ctx *actor.Context) error {
	if a.state != nil {
		return nil
	}
	s, err := a.d.store.load(a.id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// No such case: do not linger in memory.
			a.deleted = true
			ctx.Send(a.d.mgr, &caseIdle{id: a.id, gen: a.gen, force: true})
		} else {
			a.d.log.Error("load case", zap.String("case_id", a.id), zap.Error(err))
		}
		return err
	}
	a.compact(s)
	a.state = s
	a.failOpenTurns()
	if a.rt.starts > 1 {
		a.publish(Frame{Type: "error", CaseID: a.id, Code: "CASE_RESTARTED",
			Message: "the case restarted after an internal error; any running turn was marked failed"})
	}
	return nil
}

// compact makes a freshly loaded state share strings that many idle case
// actors hold anyway: the case id (the actor already has it), the owner
// (interned: a user has many cases) and the status and priority constants.
// An idle case actor must stay around 2 KB.
func (a *caseActor) compact(s *caseState) {
	sn := s.snap
	if sn.CaseId == a.id {
		sn.CaseId = a.id
	}
	sn.Owner = a.d.intern(sn.Owner)
	for _, c := range [...]string{StatusInquiry, StatusInvestigating, StatusResolved, StatusClosed} {
		if sn.Status == c {
			sn.Status = c
		}
	}
	for _, c := range [...]string{"", "low", "medium", "high", "critical"} {
		if sn.Priority == c {
			sn.Priority = c
		}
	}
}

func (a *caseActor) handle(ctx *actor.Context, r *request) {
	if a.deleted {
		r.respond(nil, ErrNotFound)
		return
	}
	if err := a.load(ctx); err != nil {
		r.respond(nil, err)
		return
	}
	if r.owner != "" && r.owner != a.state.snap.Owner {
		r.respond(nil, ErrNotFound)
		return
	}
	if a.handleTurnOp(ctx, r) {
		return
	}
	now := a.d.now()
	switch op := r.op.(type) {
	case opView:
		r.respond(a.state.view(), nil)
	case opRename:
		evs, err := a.state.decideRename(op.title, op.by, now)
		a.commit(r, evs, err)
	case opStatus:
		evs, err := a.state.decideStatus(op.to, op.reason, op.closure, op.by, now)
		a.commit(r, evs, err)
	case opDelete:
		if a.rt.turn != nil {
			a.rt.turn.cancel()
		}
		if err := a.d.store.deleteCase(a.state.row(), a.state.snap.IdempotencyKey); err != nil {
			r.respond(nil, err)
			return
		}
		a.deleted = true
		a.publish(Frame{Type: "error", CaseID: a.id, Code: "CASE_DELETED", Message: "the case was deleted"})
		a.rt.subs = nil
		a.rt.subsChanged()
		r.respond(nil, nil)
		ctx.Send(a.d.mgr, &caseIdle{id: a.id, gen: a.gen, force: true})
	case opPanic:
		if !a.d.testHooks {
			r.respond(nil, fmt.Errorf("%w: test hooks are disabled", ErrInvalidInput))
			return
		}
		panic("injected test panic")
	default:
		r.respond(nil, fmt.Errorf("%w: unknown operation %T", ErrInvalidInput, r.op))
	}
}

// commit persists evs decided on the current state and answers with the new
// row. Nothing is applied if the write fails.
func (a *caseActor) commit(r *request, evs []*casepb.Event, err error) {
	if err != nil {
		r.respond(nil, err)
		return
	}
	if len(evs) == 0 {
		r.respond(a.state.row(), nil)
		return
	}
	if !a.commitEvents(evs) {
		r.respond(nil, fmt.Errorf("persist case %s: storage failed", a.id))
		return
	}
	r.respond(a.state.row(), nil)
}

func (s *caseState) clone() *caseState {
	return &caseState{snap: proto.Clone(s.snap).(*casepb.Snapshot)}
}

// commitEvents folds evs into a copy of the state, persists them (synced)
// and only then swaps the state in and publishes them.
func (a *caseActor) commitEvents(evs []*casepb.Event) bool {
	next := a.state.clone()
	for _, ev := range evs {
		if err := next.apply(ev); err != nil {
			a.d.log.Error("apply case event", zap.String("case_id", a.id), zap.Error(err))
			return false
		}
	}
	return a.persist(next, evs)
}

// persist writes evs (already folded into next) write-ahead, then makes next
// the state and publishes the events.
func (a *caseActor) persist(next *caseState, evs []*casepb.Event) bool {
	if err := a.d.store.appendEvents(next, evs); err != nil {
		a.d.log.Error("append case events", zap.String("case_id", a.id), zap.Error(err))
		return false
	}
	a.state = next
	a.rt.noteHistory(evs)
	a.d.metrics.eventsAppended.Add(float64(len(evs)))
	for _, ev := range evs {
		a.publish(eventFrame(a.id, ev))
	}
	return true
}
