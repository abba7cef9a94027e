package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/agent"
)

// Messages between a case actor and its turn child.
type (
	// runTurn is the child's message to itself: the work must not run inside
	// actor.Started, which hollywood executes in the spawning (case) actor's
	// goroutine.
	runTurn struct{}
	// droppedSubscriber is a subscriber that refused a delta (too slow):
	// the case actor forgets it, as publish does.
	droppedSubscriber struct{ sub Subscriber }
	// turnFinished ends a turn, with the agent's output or the failure.
	turnFinished struct {
		turn int
		out  agent.Output
		err  error
	}
)

// turnRuntime survives restarts of the child so a panic can never run the
// LLM call twice.
type turnRuntime struct{ ran bool }

// turnActor runs one agent turn: the LLM stream and the tool loop. It never
// touches case state directly: deltas go to the case actor as messages and
// tool calls are requests the case actor validates, persists and answers.
// The case actor owns it logically (it holds the PID and the CancelFunc) but
// it is not a hollywood child: a child still stopping when its parent stops
// gets a second poison pill from hollywood v1.0.5 that is never processed,
// and the parent's stop hangs (ADR 0002). So the turn stops itself when done,
// and the case cancels it through the CancelFunc.
type turnActor struct {
	caseID  string
	casePID *actor.PID
	turn    int
	prep    *turnPrep
	agent   *agent.Agent
	runCtx  context.Context
	rt      *turnRuntime
	tools   *caseTools
	// started is closed by the case actor once turn_started is out; live
	// is the case's subscribers (turnRun.live, kept by the case actor).
	started <-chan struct{}
	live    *atomic.Pointer[[]Subscriber]
	waited  bool
	clock   *turnClock // times the way to the first LLM request
}

// deliver hands a delta straight to the case's subscribers instead of
// through the case actor's inbox: one goroutine hop less for each of a
// turn's many deltas. The order subscribers see is unchanged: no delta
// before turn_started (started); the turn waits for the case actor's
// answer to each tool call, whose events are published before it; and the
// answer's event and turn_done follow turnFinished, sent after the last
// delta. A subscriber added later gets turn_started and then only later
// deltas, as before.
func (t *turnActor) deliver(e *actor.Engine, parent *actor.PID, s string) {
	if !t.waited {
		select {
		case <-t.started:
			t.waited = true
		case <-t.runCtx.Done():
			return
		}
	}
	if t.runCtx.Err() != nil {
		return // cancelled, or the case restarted: the turn is over for its subscribers
	}
	subs := t.live.Load()
	if subs == nil {
		return
	}
	f := Frame{Type: "delta", CaseID: t.caseID, Turn: t.turn, Text: s}
	for _, sub := range *subs {
		if !sub.Deliver(f) {
			e.Send(parent, &droppedSubscriber{sub: sub})
		}
	}
}

func newTurnActor(t *turnActor) actor.Producer {
	return func() actor.Receiver { return t }
}

func (t *turnActor) Receive(ctx *actor.Context) {
	switch ctx.Message().(type) {
	case actor.Started:
		if !t.rt.ran {
			t.rt.ran = true
			ctx.Send(ctx.PID(), runTurn{})
		}
	case runTurn:
		t.run(ctx)
	}
}

func (t *turnActor) run(ctx *actor.Context) {
	parent, e := t.casePID, ctx.Engine()
	var (
		out agent.Output
		err error
	)
	func() {
		// A panic here must become a failed turn, never a restart: a
		// restarted child would call the LLM a second time.
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("internal error in the agent: %v", v)
			}
		}()
		t.tools.engine, t.tools.parent = e, parent
		began := time.Now()
		if !t.clock.acked.IsZero() {
			t.clock.observe(stageStart, began.Sub(t.clock.acked))
		}
		var in agent.Input
		if in, err = t.prep.input(); err != nil {
			return
		}
		t.clock.ready = time.Now()
		t.clock.observe(stagePrepare, t.clock.ready.Sub(began))
		out, err = t.agent.Run(t.runCtx, in, t.tools, func(s string) {
			if s != "" {
				t.deliver(e, parent, s)
			}
		})
	}()
	e.Send(parent, &turnFinished{turn: t.turn, out: out, err: err})
	// The turn stops itself: nobody else ever poisons it (see ADR 0002).
	e.Poison(ctx.PID())
}
