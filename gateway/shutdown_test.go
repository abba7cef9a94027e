package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
)

// Regression tests for two shutdown hangs found from the gateway (fixed in
// package actors, see ADR 0002): stopping cases right after a turn, and
// with a turn waiting on the LLM.

// The case actor poisons its finished turn child without waiting for it to
// stop. If the case stops (Shutdown, passivation) while that child is still
// stopping, hollywood's cleanup sends the child a second poison pill that
// is never processed, and waits for it forever.
func TestActorsShutdownRightAfterATurn(t *testing.T) {
	for i := range 20 {
		e := newLiveEnv(t, Config{})
		tok := e.register("alice").AccessToken
		id := e.newCase(tok)
		body, ctype := multipartBody(t, formPart{name: "query", content: "hello"})
		wantStatus(t, e.postTurn(tok, id, body, ctype), http.StatusOK)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := e.cases.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Shutdown right after a finished turn: %v", i, err)
		}
	}
}

// A turn in flight is cancelled only when the case actor handles Stopped,
// which hollywood delivers after it has waited for the children to stop;
// the turn child is busy in the LLM call and reads its poison pill only
// when the call ends. Shutdown therefore waits for the whole LLM call.
func TestActorsShutdownWithATurnInFlight(t *testing.T) {
	e := newLiveEnv(t, Config{TurnSyncWait: 50 * time.Millisecond})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	e.llm.Enqueue(llmtest.Reply{Content: "late", TTFT: 30 * time.Second})
	body, ctype := multipartBody(t, formPart{name: "query", content: "hello"})
	wantStatus(t, e.postTurn(tok, id, body, ctype), http.StatusAccepted)
	wstest.WaitFor(t, 5*time.Second, "the LLM request", func() bool { return e.llm.RequestCount() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := e.cases.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a turn waiting on the LLM: %v", err)
	}
}
