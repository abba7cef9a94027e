package actors

import (
	"errors"
	"fmt"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// caseRuntime survives restarts of one case actor incarnation (the producer
// closure holds it), so restarts can be counted: hollywood builds a fresh
// receiver after a panic and forgets everything else.
type caseRuntime struct {
	starts int
}

// caseActor is the thin shell around caseState: it loads the state lazily
// from Pebble (so spawning is cheap and never blocks casemgr), turns requests
// into events with the pure decide functions, persists them with Sync, folds
// them in and answers.
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
			ctx.Send(ctx.Parent(), &caseRestarted{id: a.id, gen: a.gen, restarts: a.rt.starts - 1})
		}
	case actor.Stopped:
		if !a.panicking {
			ctx.Send(ctx.Parent(), &caseStopped{id: a.id, gen: a.gen})
		}
	case *request:
		a.current = m
		a.handle(ctx, m)
		a.current = nil
	case *passivateQuery:
		ctx.Send(ctx.Parent(), &caseIdle{id: a.id, gen: a.gen, force: a.deleted})
	}
}

func (a *caseActor) handle(ctx *actor.Context, r *request) {
	if a.deleted {
		r.respond(nil, ErrNotFound)
		return
	}
	if a.state == nil {
		s, err := a.d.store.load(a.id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				// No such case: do not linger in memory.
				a.deleted = true
				ctx.Send(ctx.Parent(), &caseIdle{id: a.id, gen: a.gen, force: true})
			} else {
				a.d.log.Error("load case", zap.String("case_id", a.id), zap.Error(err))
			}
			r.respond(nil, err)
			return
		}
		a.state = s
	}
	if r.owner != "" && r.owner != a.state.snap.Owner {
		r.respond(nil, ErrNotFound)
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
		if err := a.d.store.deleteCase(a.state.row(), a.state.snap.IdempotencyKey); err != nil {
			r.respond(nil, err)
			return
		}
		a.deleted = true
		r.respond(nil, nil)
		ctx.Send(ctx.Parent(), &caseIdle{id: a.id, gen: a.gen, force: true})
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

// commit persists evs (write-ahead, synced), folds them into the state and
// answers with the new row. Nothing is applied if the write fails.
func (a *caseActor) commit(r *request, evs []*casepb.Event, err error) {
	if err != nil {
		r.respond(nil, err)
		return
	}
	if len(evs) == 0 {
		r.respond(a.state.row(), nil)
		return
	}
	next := &caseState{snap: proto.Clone(a.state.snap).(*casepb.Snapshot)}
	for _, ev := range evs {
		if err := next.apply(ev); err != nil {
			r.respond(nil, err)
			return
		}
	}
	if err := a.d.store.appendEvents(next, evs); err != nil {
		a.d.log.Error("append case events", zap.String("case_id", a.id), zap.Error(err))
		r.respond(nil, fmt.Errorf("persist case %s: %w", a.id, err))
		return
	}
	a.state = next
	a.d.metrics.eventsAppended.Add(float64(len(evs)))
	r.respond(next.row(), nil)
}
