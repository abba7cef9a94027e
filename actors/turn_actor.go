package actors

import (
	"context"
	"fmt"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/agent"
)

// Messages between a case actor and its turn child.
type (
	// runTurn is the child's message to itself: the work must not run inside
	// actor.Started, which hollywood executes in the spawning (case) actor's
	// goroutine.
	runTurn struct{}
	// turnDelta is a streamed fragment of the answer.
	turnDelta struct {
		turn int
		text string
	}
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
		var in agent.Input
		if in, err = t.prep.input(); err != nil {
			return
		}
		out, err = t.agent.Run(t.runCtx, in, t.tools, func(s string) {
			if s != "" {
				e.Send(parent, &turnDelta{turn: t.turn, text: s})
			}
		})
	}()
	e.Send(parent, &turnFinished{turn: t.turn, out: out, err: err})
	// The turn stops itself: nobody else ever poisons it (see ADR 0002).
	e.Poison(ctx.PID())
}
