package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// One session of the workload: a WebSocket connection subscribed to its
// own case, sending one turn at a time. The session's goroutine writes its
// turns and reads its frames itself, so it owns every field.

// inFrame is any server frame; which fields are set depends on Type.
type inFrame struct {
	Type        string          `json:"type"`
	CaseID      string          `json:"case_id"`
	ClientMsgID string          `json:"client_msg_id"`
	Seq         uint64          `json:"seq"`
	Turn        int             `json:"turn"`
	Text        string          `json:"text"`
	Kind        string          `json:"kind"`
	Code        string          `json:"code"`
	Message     string          `json:"message"`
	Ref         string          `json:"ref"`
	Data        json.RawMessage `json:"data"`
}

// outFrame is a client frame.
type outFrame struct {
	Type        string  `json:"type"`
	Token       string  `json:"token,omitempty"`
	CaseID      string  `json:"case_id,omitempty"`
	SinceSeq    *uint64 `json:"since_seq,omitempty"`
	ClientMsgID string  `json:"client_msg_id,omitempty"`
	Text        string  `json:"text,omitempty"`
}

// Failure reasons, the keys of the failure counts. A failed turn has
// exactly one.
const (
	failTurnFailed = "turn_failed event"
	failError      = "error frame"
	failTimeout    = "timeout"
	failConn       = "connection lost"
	failNoAck      = "turn_done without ack"
	failNoLLM      = "no LLM request"
	failShort      = "reply incomplete"
)

// session is one connection's state and its measurements.
type session struct {
	idx    int
	user   int // index into the phase's tokens
	token  string
	caseID string
	conn   *websocket.Conn
	rng    *rand.Rand

	ack, llm, delta []time.Duration
	completed       int // turns that ended well
	inWindow        int // … of which finished before the active phase's end
	failed          map[string]int
	sent            []sentTurn
	lost            bool   // the connection died; the session stopped
	lastErr         string // what killed it
	closed          bool
}

func (s *session) fail(reason string) {
	if s.failed == nil {
		s.failed = map[string]int{}
	}
	s.failed[reason]++
}

// connect dials the target, authenticates with an auth frame (the browser
// path) and subscribes to the session's case.
func (s *session) connect(ctx context.Context, d *websocket.Dialer, wsURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, resp, err := d.DialContext(ctx, wsURL, http.Header{})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	s.conn = conn
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	if err := conn.WriteJSON(outFrame{Type: "auth", Token: s.token}); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if _, err := s.await("ready", ""); err != nil {
		return err
	}
	since := uint64(0)
	if err := conn.WriteJSON(outFrame{Type: "subscribe", CaseID: s.caseID, SinceSeq: &since}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if _, err := s.await("subscribed", s.caseID); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Time{})
	return nil
}

// await reads until a frame of type typ (for caseID, if given); replayed
// events and the like are skipped, an error frame ends the wait.
func (s *session) await(typ, caseID string) (inFrame, error) {
	for {
		var f inFrame
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			return f, fmt.Errorf("waiting for %s: %w", typ, err)
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return f, fmt.Errorf("waiting for %s: bad frame: %w", typ, err)
		}
		switch {
		case f.Type == typ && (caseID == "" || f.CaseID == caseID):
			return f, nil
		case f.Type == "error":
			return f, fmt.Errorf("waiting for %s: error %s: %s", typ, f.Code, f.Message)
		}
	}
}

// close says goodbye and drops the connection; it may be called again.
func (s *session) close() {
	if s.conn == nil || s.closed {
		return
	}
	s.closed = true
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = s.conn.Close()
}

// workload is what every session of a phase shares (read-only).
type workload struct {
	phase       int
	fake        *fakeLLM
	pace        pacing
	turnTimeout time.Duration
	think       time.Duration // upper bound of the random pause between turns
	stagger     time.Duration // upper bound of the random delay before the first turn
	stopAt      time.Time     // no turn starts after this
}

// run sends turns until w.stopAt, ctx's end or a lost connection.
func (s *session) run(ctx context.Context, w *workload) {
	if !s.pause(ctx, w, w.stagger) {
		return
	}
	for k := 0; ctx.Err() == nil && time.Now().Before(w.stopAt); k++ {
		key := fmt.Sprintf("%sp%d-s%d-k%d", keyPrefix, w.phase, s.idx, k)
		if !s.turn(w, key) {
			return
		}
		if !s.pause(ctx, w, w.think) {
			return
		}
	}
}

// pause waits a random time below upTo, never past w.stopAt; false means
// stop.
func (s *session) pause(ctx context.Context, w *workload, upTo time.Duration) bool {
	if upTo <= 0 {
		return true
	}
	d := min(time.Duration(s.rng.Int64N(int64(upTo))), time.Until(w.stopAt))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// turn sends one turn and reads until its turn_done; false means the
// connection is no longer usable.
func (s *session) turn(w *workload, key string) bool {
	text := "Still failing after the restart, see " + key + " for the trace"
	s.sent = append(s.sent, sentTurn{Text: text})
	sent := &s.sent[len(s.sent)-1]
	start := time.Now()
	_ = s.conn.SetWriteDeadline(start.Add(10 * time.Second))
	if err := s.conn.WriteJSON(outFrame{Type: "turn", CaseID: s.caseID, ClientMsgID: key, Text: text}); err != nil {
		return s.lose(err)
	}
	_ = s.conn.SetReadDeadline(start.Add(w.turnTimeout))
	var seen []deltaSeen
	off := 0
	failed := ""
	for {
		_, data, err := s.conn.ReadMessage()
		now := time.Now()
		if err != nil {
			return s.lose(err)
		}
		var f inFrame
		if err := json.Unmarshal(data, &f); err != nil {
			return s.lose(fmt.Errorf("bad frame: %w", err))
		}
		if f.CaseID != "" && f.CaseID != s.caseID {
			continue
		}
		switch f.Type {
		case "ack":
			if f.ClientMsgID == key && !sent.Acked {
				sent.Acked = true
				s.ack = append(s.ack, now.Sub(start))
			}
		case "delta":
			seen = append(seen, deltaSeen{at: now, off: off})
			off += len(f.Text)
		case "event":
			if f.Kind == "turn_failed" && failed == "" {
				failed = failTurnFailed
			}
		case "error":
			if f.Ref != key && f.Ref != s.caseID && f.Ref != "" {
				continue
			}
			if !sent.Acked { // refused: no turn will run
				s.fail(failError)
				s.lastErr = f.Code + ": " + f.Message
				return true
			}
			if failed == "" {
				failed = failError
			}
		case "turn_done":
			return s.finish(w, key, start, seen, off, failed)
		}
	}
}

// finish scores a turn that reached turn_done.
func (s *session) finish(w *workload, key string, start time.Time, seen []deltaSeen, chars int, failed string) bool {
	arrival, llmOK := w.fake.take(key)
	acked := s.sent[len(s.sent)-1].Acked
	switch {
	case failed != "":
	case !acked:
		failed = failNoAck
	case !llmOK:
		failed = failNoLLM
	case chars < w.pace.Chunks*w.pace.ChunkChars:
		failed = failShort
	}
	if llmOK {
		s.llm = append(s.llm, arrival.received.Sub(start))
		s.delta = w.pace.deltaLatencies(arrival.replied, seen, s.delta)
	}
	if failed != "" {
		s.fail(failed)
		return true
	}
	s.completed++
	if !time.Now().After(w.stopAt) {
		s.inWindow++
	}
	return true
}

// lose records a broken connection: the turn in flight failed and the
// session stops.
func (s *session) lose(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.fail(failTimeout)
	} else {
		s.fail(failConn)
	}
	s.lost, s.lastErr = true, err.Error()
	return false
}
