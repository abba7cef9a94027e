package actors

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

// Deltas go from the turn actor straight to subscribers (turnActor.deliver);
// a tool call's events still come between the deltas of the round that
// made the call and those of the next, and everything of the turn comes
// after turn_started and before the answer's event and turn_done.
func TestDeltasKeepTheirPlaceAmongTheTurnsFrames(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.Enqueue(
		llmtest.Reply{Content: "Noting the symptom first. ", ChunkChars: 4, ToolCalls: []llmtest.ToolCallReply{
			{ID: "t1", Name: "update_milestones", Arguments: `{"completed":["symptom_verified"],"note":"502s"}`}}},
		llmtest.Reply{Content: "Recorded: the symptom is verified.", ChunkChars: 4},
	)
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	id := investigatingCase(t, sys)
	sub := &collector{}
	if _, err := sys.cases.Subscribe(ctx, "usr_a", id, 0, sub); err != nil {
		t.Fatal(err)
	}
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: id, ClientMsgID: "c1", Text: "502s since the deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second); err != nil || out.Status != TurnCompleted {
		t.Fatalf("outcome %+v %v", out, err)
	}
	final := sub.waitFor(t, "answer", isAssistant(ack.Turn))
	sub.waitFor(t, "turn_done", func(f Frame) bool { return f.Type == "turn_done" })

	var (
		order          []string
		before, after  strings.Builder
		sawMilestones  bool
		sawStarted     bool
		sawAnswerEvent bool
	)
	for _, f := range sub.snapshot() {
		switch {
		case f.Type == "turn_started":
			sawStarted = true
			order = append(order, "turn_started")
		case f.Type == "delta":
			if !sawStarted || sawAnswerEvent {
				t.Fatalf("delta %q outside turn_started … answer: %v", f.Text, order)
			}
			if sawMilestones {
				after.WriteString(f.Text)
			} else {
				before.WriteString(f.Text)
			}
			if n := len(order); n == 0 || order[n-1] != "delta" {
				order = append(order, "delta")
			}
		case f.Type == "event" && f.Kind == "milestones":
			sawMilestones = true
			order = append(order, "milestones")
		case f.Type == "event" && f.Seq == final.Seq:
			sawAnswerEvent = true
			order = append(order, "answer")
		case f.Type == "turn_done":
			order = append(order, "turn_done")
		}
	}
	if got := strings.Join(order, " "); got != "turn_started delta milestones delta answer turn_done" {
		t.Fatalf("frame order %q", got)
	}
	if !strings.Contains(before.String(), "Noting the symptom first.") || strings.TrimSpace(after.String()) != "Recorded: the symptom is verified." {
		t.Fatalf("deltas before the tool's event %q, after %q", before.String(), after.String())
	}
	if content := messageData(t, final)["content"].(string); before.String()+after.String() != content {
		t.Fatalf("deltas %q != answer %q", before.String()+after.String(), content)
	}
}

// deltaRefuser takes everything but deltas, as a connection whose queue is
// full of them would.
type deltaRefuser struct{ collector }

func (d *deltaRefuser) Deliver(f Frame) bool {
	if f.Type == "delta" {
		return false
	}
	return d.collector.Deliver(f)
}

// A subscriber that refuses a delta is dropped like one that refuses an
// event; the turn and the other subscribers go on.
func TestSubscriberRefusingADeltaIsDropped(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: "The pool is exhausted.", ChunkChars: 4})
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	slow, fast := &deltaRefuser{}, &collector{}
	_, _ = sys.cases.Subscribe(ctx, "usr_a", r.CaseID, 0, slow)
	_, _ = sys.cases.Subscribe(ctx, "usr_a", r.CaseID, 0, fast)
	ack, _ := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "z", Text: "hi"})
	if out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second); err != nil || out.Status != TurnCompleted {
		t.Fatalf("%+v %v", out, err)
	}
	fast.waitFor(t, "turn_done", func(f Frame) bool { return f.Type == "turn_done" })
	if counterValue(sys.cases.d.metrics.slowSubscribers) != 1 {
		t.Fatalf("slow subscribers dropped: %v, want 1", counterValue(sys.cases.d.metrics.slowSubscribers))
	}
	for _, f := range slow.snapshot() {
		if f.Type == "turn_done" || isAssistant(ack.Turn)(f) {
			t.Fatalf("the dropped subscriber still got %s", f.Type)
		}
	}
}
