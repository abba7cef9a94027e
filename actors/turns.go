package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SubmitTurn stores the user's message durably and starts (or queues) the
// agent turn. The returned Ack means the message is saved. A repeated
// ClientMsgID returns the first Ack and starts nothing.
func (c *Cases) SubmitTurn(ctx context.Context, req TurnRequest) (Ack, error) {
	v, err := c.ask(ctx, req.CaseID, req.Owner, opTurn{req: req})
	if err != nil {
		return Ack{}, err
	}
	return v.(Ack), nil
}

// CancelTurn stops the case's in-flight turn (it ends as turn_failed
// "cancelled"); with no turn running it does nothing.
func (c *Cases) CancelTurn(ctx context.Context, owner, caseID string) error {
	_, err := c.ask(ctx, caseID, owner, opCancel{})
	return err
}

// Subscribe replays the case's events after sinceSeq to sub, sends a
// "subscribed" frame with the head seq, then keeps sub for live frames until
// Unsubscribe or until sub cannot keep up.
func (c *Cases) Subscribe(ctx context.Context, owner, caseID string, sinceSeq uint64, sub Subscriber) (uint64, error) {
	v, err := c.ask(ctx, caseID, owner, opSubscribe{sub: sub, since: sinceSeq})
	if err != nil {
		return 0, err
	}
	return v.(uint64), nil
}

// Unsubscribe removes sub from the case. It never fails: a case that is gone
// has no subscribers.
func (c *Cases) Unsubscribe(ctx context.Context, owner, caseID string, sub Subscriber) {
	_, _ = c.ask(ctx, caseID, owner, opUnsubscribe{sub: sub})
}

// TurnResult reports where turn n of a case stands.
func (c *Cases) TurnResult(ctx context.Context, owner, caseID string, turn int) (TurnOutcome, error) {
	v, err := c.ask(ctx, caseID, owner, opTurnResult{turn: turn})
	if err != nil {
		return TurnOutcome{}, err
	}
	return v.(TurnOutcome), nil
}

// AwaitTurn waits up to wait for turn n (acknowledged at ack) to finish and
// returns its outcome; a turn still running when wait ends is returned with
// Status TurnPending.
func (c *Cases) AwaitTurn(ctx context.Context, owner string, ack Ack, wait time.Duration) (TurnOutcome, error) {
	sub := &waitSubscriber{turn: ack.Turn, done: make(chan struct{}, 1)}
	if _, err := c.Subscribe(ctx, owner, ack.CaseID, ack.Seq, sub); err != nil && !errors.Is(err, ErrSlowSubscriber) {
		return TurnOutcome{}, err
	}
	defer c.Unsubscribe(context.Background(), owner, ack.CaseID, sub)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	poll := time.NewTicker(time.Second) // safety net if the subscription was dropped
	defer poll.Stop()
	for {
		select {
		case <-sub.done:
			return c.TurnResult(ctx, owner, ack.CaseID, ack.Turn)
		case <-poll.C:
			out, err := c.TurnResult(ctx, owner, ack.CaseID, ack.Turn)
			if err != nil || out.Status != TurnPending {
				return out, err
			}
		case <-timer.C:
			return c.TurnResult(ctx, owner, ack.CaseID, ack.Turn)
		case <-ctx.Done():
			return TurnOutcome{}, ctx.Err()
		}
	}
}

// waitSubscriber signals when turn's answer or failure has been persisted.
type waitSubscriber struct {
	turn int
	done chan struct{}
}

func (w *waitSubscriber) Deliver(f Frame) bool {
	finished := f.Type == "turn_done" && f.Turn == w.turn
	if f.Type == "event" && (f.Kind == "message" || f.Kind == "turn_failed") {
		// A turn that finished before we subscribed shows up in the replay
		// as its persisted answer or failure (turn_done is not persisted).
		var d struct {
			Role       string `json:"role"`
			TurnNumber int    `json:"turn_number"`
			Turn       int    `json:"turn"`
		}
		if json.Unmarshal(f.Data, &d) == nil {
			finished = (f.Kind == "message" && d.Role == "assistant" && d.TurnNumber == w.turn) ||
				(f.Kind == "turn_failed" && d.Turn == w.turn)
		}
	}
	if finished {
		select {
		case w.done <- struct{}{}:
		default:
		}
	}
	return true
}

// Egress returns what was sent to LLMs for a case, oldest first. The caller
// must be allowed to audit (the gateway restricts it to admins).
func (c *Cases) Egress(_ context.Context, caseID string) ([]EgressRecord, error) {
	if !validCaseID(caseID) {
		return nil, ErrNotFound
	}
	recs, err := c.audit.list(caseID)
	if err != nil {
		return nil, fmt.Errorf("read egress of case %s: %w", caseID, err)
	}
	if len(recs) == 0 {
		if _, err := c.d.store.row(caseID); err != nil {
			return nil, err
		}
	}
	return recs, nil
}
