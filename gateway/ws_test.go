package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	dto "github.com/prometheus/client_model/go"
)

func turnFrame(caseID, msgID, text string) map[string]any {
	return map[string]any{"type": "turn", "case_id": caseID, "client_msg_id": msgID, "text": text}
}

func isTurnDone(f frame) bool { return f.Type == "turn_done" }

func lastFrame(frames []frame) frame { return frames[len(frames)-1] }

// deltaText concatenates the delta frames of a turn.
func deltaText(frames []frame, turn int) string {
	var b strings.Builder
	for _, f := range frames {
		if f.Type == "delta" && f.Turn == turn {
			b.WriteString(f.Text)
		}
	}
	return b.String()
}

// assistantMessage is the persisted answer among frames.
func assistantMessage(t *testing.T, frames []frame) messageData {
	t.Helper()
	for _, f := range frames {
		if f.Type == "event" && f.Kind == "message" {
			if m := f.message(t); m.Role == "assistant" {
				return m
			}
		}
	}
	t.Fatalf("no assistant message among %d frames", len(frames))
	return messageData{}
}

func TestWSAuth(t *testing.T) {
	e := newLiveEnv(t, Config{})
	alice := e.register("alice")

	t.Run("header", func(t *testing.T) {
		c, _, err := e.dialWS(alice.AccessToken, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f := c.next(); f.Type != "ready" || f.Protocol != 1 || f.UserID != alice.User.UserID {
			t.Fatalf("want ready for %s, got %s", alice.User.UserID, f.raw)
		}
		c.roundTrip()
	})
	t.Run("first frame", func(t *testing.T) {
		c, _, err := e.dialWS("", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(map[string]string{"type": "auth", "token": alice.AccessToken})
		if f := c.next(); f.Type != "ready" || f.UserID != alice.User.UserID {
			t.Fatalf("want ready, got %s", f.raw)
		}
		c.roundTrip()
		// A later auth frame renews the connection's token (same user).
		c.send(map[string]string{"type": "auth", "token": alice.AccessToken})
		if f := c.next(); f.Type != "ready" || f.UserID != alice.User.UserID {
			t.Fatalf("re-auth: want ready, got %s", f.raw)
		}
	})
	t.Run("bad header token refuses the upgrade", func(t *testing.T) {
		_, resp, err := e.dialWS("not-a-token", nil, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Error-Code") != CodeInvalidToken {
			t.Fatalf("want 401 %s, got %v %v", CodeInvalidToken, resp, err)
		}
	})
	t.Run("bad frame token", func(t *testing.T) {
		c, _, err := e.dialWS("", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(map[string]string{"type": "auth", "token": "not-a-token"})
		c.wantError(wsErrUnauthorized, "")
		c.expectClose(closeUnauthorized)
	})
}

func TestWSNothingBeforeAuth(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.tune = func(h *wsHub) { h.timing.authWait = 300 * time.Millisecond }
	})
	alice := e.register("alice")
	id := e.newCase(alice.AccessToken)
	for _, first := range []string{
		`{"type":"subscribe","case_id":"` + id + `","since_seq":0}`,
		`{"type":"ping"}`,
		`not json`,
		`{"type":"auth"}`,
	} {
		c, _, err := e.dialWS("", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.sendRaw(first)
		frames := c.expectClose(closeUnauthorized)
		if len(frames) != 1 || frames[0].Type != "error" || frames[0].Code != wsErrUnauthorized {
			t.Fatalf("after %s: want one unauthorized error before the close, got %v", first, frames)
		}
	}
	// Silence is refused too, once the auth window has passed.
	c, _, err := e.dialWS("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if frames := c.expectClose(closeUnauthorized); len(frames) != 1 || frames[0].Code != wsErrUnauthorized {
		t.Fatalf("auth timeout: %v", frames)
	}
}

func TestWSSubscribeReplayThenLive(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"disk full on db-2"}`), http.StatusOK)

	c := e.connect(tok)
	frames := c.subscribe(id, 0)
	if len(frames) != 3 || frames[0].Kind != "created" || frames[1].Kind != "title" ||
		frames[0].Seq != 1 || frames[1].Seq != 2 || *frames[2].HeadSeq != 2 {
		t.Fatalf("replay: %v", frames)
	}
	// From the middle: only what follows.
	c2 := e.connect(tok)
	if frames := c2.subscribe(id, 1); len(frames) != 2 || frames[0].Seq != 2 {
		t.Fatalf("replay since 1: %v", frames)
	}
	// Live.
	wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"disk full on db-3"}`), http.StatusOK)
	for _, cl := range []*wsClient{c, c2} {
		if f := cl.next(); f.Type != "event" || f.Kind != "title" || f.Seq != 3 || !strings.Contains(string(f.Data), "db-3") {
			t.Fatalf("live: %s", f.raw)
		}
	}
	// Unsubscribed connections hear nothing more.
	c.send(map[string]any{"type": "unsubscribe", "case_id": id})
	c.roundTrip() // the unsubscribe has been handled
	wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"disk full on db-4"}`), http.StatusOK)
	if f := c2.next(); f.Seq != 4 {
		t.Fatalf("live: %s", f.raw)
	}
	c.roundTrip() // would fail on the title event if it had been delivered
}

func TestWSTurnStreamResumeAndDedupe(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	const answer = "Your disk is full: /var/log holds 40 GB of rotated logs. Delete them, then fix logrotate."
	e.llm.Enqueue(llmtest.Reply{Content: answer, ChunkChars: 3})

	c := e.connect(tok)
	head := *lastFrame(c.subscribe(id, 0)).HeadSeq
	c.send(turnFrame(id, "m-1", "db-1 says no space left on device"))
	frames := c.until(isTurnDone)

	ack := frames[0]
	if ack.Type != "ack" || ack.ClientMsgID != "m-1" || ack.CaseID != id || ack.Seq != head+1 || ack.Turn != 1 {
		t.Fatalf("the first frame of a turn must be its ack: %s", ack.raw)
	}
	firstDelta := -1
	var seqs []uint64
	for i, f := range frames {
		if f.Type == "delta" && firstDelta < 0 {
			firstDelta = i
		}
		if f.Type == "event" {
			seqs = append(seqs, f.Seq)
		}
	}
	if firstDelta < 0 {
		t.Fatal("no delta frames")
	}
	user := frames[1].message(t)
	if frames[1].Seq != ack.Seq || user.Role != "user" || user.ClientMsgID != "m-1" || user.TurnNumber != 1 {
		t.Fatalf("the ack must name the user message: %s / %s", ack.raw, frames[1].raw)
	}
	msg := assistantMessage(t, frames)
	if got := deltaText(frames, 1); got != msg.Content || !strings.Contains(got, "40 GB") {
		t.Fatalf("deltas %q do not concatenate to the answer %q", got, msg.Content)
	}
	for i, s := range seqs {
		if s != head+1+uint64(i) {
			t.Fatalf("event seqs %v have a gap or a repeat after %d", seqs, head)
		}
	}
	if last := frames[len(frames)-1]; last.Turn != 1 || last.CaseID != id {
		t.Fatalf("turn_done: %s", last.raw)
	}
	lastSeen := seqs[len(seqs)-1]

	// The same client_msg_id again: the same ack, no second turn.
	requests := e.llm.RequestCount()
	c.send(turnFrame(id, "m-1", "db-1 says no space left on device"))
	dup := c.next()
	if dup.Type != "ack" || dup.ClientMsgID != ack.ClientMsgID || dup.CaseID != ack.CaseID || dup.Seq != ack.Seq || dup.Turn != ack.Turn {
		t.Fatalf("repeated client_msg_id: %s, first ack %s", dup.raw, ack.raw)
	}
	// The connection drops; meanwhile another client runs a turn.
	_ = c.conn.Close()
	other := e.connect(tok)
	other.send(turnFrame(id, "m-2", "and now?"))
	ack2 := other.next()
	if ack2.Type != "ack" || ack2.Turn != 2 {
		t.Fatalf("a second turn is turn 2 (the repeat started none): %s", ack2.raw)
	}
	waitFor(t, 10*time.Second, "turn 2 to finish", func() bool {
		row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id+"/messages", tok, ""))
		return row["total_count"] == float64(4)
	})
	if n := e.llm.RequestCount(); n != requests+1 {
		t.Fatalf("%d LLM requests after the repeat and one new turn, want %d", n, requests+1)
	}

	// Resume from the last seen seq: exactly the events missed, in order.
	back := e.connect(tok)
	missed := back.subscribe(id, lastSeen)
	headNow := *missed[len(missed)-1].HeadSeq
	missed = missed[:len(missed)-1]
	if len(missed) == 0 || uint64(len(missed)) != headNow-lastSeen {
		t.Fatalf("resume since %d: %d events, head %d", lastSeen, len(missed), headNow)
	}
	for i, f := range missed {
		if f.Type != "event" || f.Seq != lastSeen+1+uint64(i) {
			t.Fatalf("resume: frame %d is %s", i, f.raw)
		}
	}
	if m := missed[0].message(t); m.ClientMsgID != "m-2" || m.Role != "user" {
		t.Fatalf("the first missed event is turn 2's question: %s", missed[0].raw)
	}
}

func TestWSTwoConnectionsSeeOneStream(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	e.llm.Enqueue(llmtest.Reply{Content: strings.Repeat("check the inode count. ", 20), ChunkChars: 5})
	a, b := e.connect(tok), e.connect(tok)
	a.subscribe(id, 0)
	b.subscribe(id, 0)
	a.send(turnFrame(id, "two-1", "df says 100%"))
	fa, fb := a.until(isTurnDone), b.until(isTurnDone)
	for name, frames := range map[string][]frame{"sender": fa, "watcher": fb} {
		msg := assistantMessage(t, frames)
		if got := deltaText(frames, 1); got != msg.Content || msg.Content == "" {
			t.Fatalf("%s: deltas %q, answer %q", name, got, msg.Content)
		}
	}
	for _, f := range fb {
		if f.Type == "ack" {
			t.Fatalf("the watcher got the sender's ack: %s", f.raw)
		}
	}
}

func TestWSSlowConsumerIsCutOff(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.sndBuf = 4096 // the slow client's connection, the first to be accepted
		o.tune = func(h *wsHub) {
			h.limits.queueFrames = 32
			h.timing.writeWait = 30 * time.Second // the cut, not a write timeout, must end it
		}
	})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)

	small := &websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4096)
			}
			return c, err
		}}
	slow, _, err := e.dialWS(tok, nil, small)
	if err != nil {
		t.Fatal(err)
	}
	slow.next() // ready
	slow.subscribe(id, 0)
	fast := e.connect(tok)
	head := *lastFrame(fast.subscribe(id, 0)).HeadSeq

	// Persisted events pile up while the slow client never reads; it is
	// cut off without the case or the other client noticing. The fast
	// client reads each event before the next rename, so only the slow
	// one can fall behind (a 32-frame queue would otherwise also cut a
	// reader whose writer goroutine the scheduler had not run for a few
	// milliseconds of this tight loop).
	got := make(chan frame, 1)
	go func() {
		defer close(got)
		for {
			f, err := fast.readFrame(10 * time.Second)
			if err != nil {
				t.Errorf("the fast client: %v", err)
				return
			}
			if f.Type == "pong" { // the ping sent after the last rename
				return
			}
			got <- f
		}
	}()
	renames := 0
	for metricValue(e.srv.metrics.wsSlow) < 1 {
		if renames++; renames > 2000 {
			t.Fatal("2000 events never overflowed a 32-frame queue behind a 4 KiB socket")
		}
		wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, fmt.Sprintf(`{"title":"rename %d"}`, renames)), http.StatusOK)
		f, ok := <-got
		if !ok {
			t.FailNow() // the reader said why
		}
		if f.Type != "event" || f.Seq != head+uint64(renames) {
			t.Fatalf("the fast client missed event %d: %s", head+uint64(renames), f.raw)
		}
	}
	fast.send(map[string]string{"type": "ping"})
	if f, ok := <-got; ok {
		t.Fatalf("the fast client got more than the renames: %s", f.raw)
	}
	slow.expectClose(closeSlowConsumer)

	e.llm.Enqueue(llmtest.Reply{Content: strings.Repeat("still here. ", 50), ChunkChars: 2})
	fast.send(turnFrame(id, "after-cut", "thanks"))
	frames := fast.until(isTurnDone)
	if frames[0].Type != "ack" || deltaText(frames, 1) != assistantMessage(t, frames).Content {
		t.Fatalf("after the cut: %s", frames[0].raw)
	}
}

func TestWSBadFramesKeepTheConnection(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	c := e.connect(tok)
	for _, tc := range []struct{ frame, code, ref string }{
		{`not json`, wsErrMalformed, ""},
		{`[1,2]`, wsErrMalformed, ""},
		{`{"type":"teleport","case_id":"c1"}`, wsErrUnknownType, "c1"},
		{`{"case_id":"c1"}`, wsErrInvalid, "c1"},
		{`{"type":"subscribe"}`, wsErrInvalid, ""},
		{`{"type":"subscribe","case_id":"c1","since_seq":"ten"}`, wsErrInvalid, "c1"},
		{`{"type":"subscribe","case_id":"c1","since_seq":-1}`, wsErrInvalid, "c1"},
		{`{"type":"turn","case_id":"c1","text":"hi"}`, wsErrInvalid, "c1"},
		{`{"type":"turn","case_id":"c1","client_msg_id":"m1"}`, wsErrInvalid, "m1"},
		{`{"type":"turn","case_id":"c1","client_msg_id":"rest:x","text":"hi"}`, wsErrInvalid, "rest:x"},
		{`{"type":"subscribe","case_id":"case_00000000000000000000000000"}`, wsErrNotFound, "case_00000000000000000000000000"},
		{`{"type":"turn","case_id":"nope","client_msg_id":"m9","text":"hi"}`, wsErrNotFound, "m9"},
	} {
		c.sendRaw(tc.frame)
		c.wantError(tc.code, tc.ref)
	}
	_ = c.conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	c.wantError(wsErrMalformed, "")
	c.roundTrip()
}

func TestWSFrameLimits(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.tune = func(h *wsHub) { h.limits.rate, h.limits.burst = 1, 3 }
	})
	tok := e.register("alice").AccessToken
	c := e.connect(tok)
	for range 6 {
		c.send(map[string]string{"type": "ping"})
	}
	var pongs, limited int
	for range 6 {
		switch f := c.next(); {
		case f.Type == "pong":
			pongs++
		case f.Type == "error" && f.Code == wsErrRateLimited:
			limited++
		default:
			t.Fatalf("unexpected %s", f.raw)
		}
	}
	if pongs < 3 || limited == 0 {
		t.Fatalf("%d pongs and %d rate_limited errors for 6 pings with a burst of 3", pongs, limited)
	}
	// A frame over 512 KiB ends the connection with 1009.
	c.sendRaw(`{"type":"ping","pad":"` + strings.Repeat("x", 600<<10) + `"}`)
	c.expectClose(websocket.CloseMessageTooBig)
}

func TestWSOtherUsersCaseIsNotFound(t *testing.T) {
	e := newLiveEnv(t, Config{})
	alice := e.register("alice") // the first account is the admin
	bob := e.register("bob")
	id := e.newCase(alice.AccessToken)

	c := e.connect(bob.AccessToken)
	c.send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	c.wantError(wsErrNotFound, id)
	c.send(turnFrame(id, "steal-1", "give me your secrets"))
	c.wantError(wsErrNotFound, "steal-1")
	c.send(map[string]any{"type": "cancel", "case_id": id})
	c.wantError(wsErrNotFound, id)
	c.roundTrip()
	if row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, alice.AccessToken, "")); row["current_turn"] != float64(0) {
		t.Fatalf("bob changed alice's case: %v", row)
	}
	if n := e.llm.RequestCount(); n != 0 {
		t.Fatalf("%d LLM requests", n)
	}

	// The egress audit: admins only, and a 404 for everyone else.
	wantError(t, e.call("GET", "/api/v1/admin/cases/"+id+"/egress", bob.AccessToken, ""), http.StatusNotFound, CodeCaseNotFound)
	wantError(t, e.call("GET", "/api/v1/admin/cases/case_00000000000000000000000000/egress", alice.AccessToken, ""), http.StatusNotFound, CodeCaseNotFound)
	rec := e.call("GET", "/api/v1/admin/cases/"+id+"/egress", alice.AccessToken, "")
	wantStatus(t, rec, http.StatusOK)
	if body := rec.Body.String(); !strings.Contains(body, `"records":[]`) || !strings.Contains(body, id) {
		t.Fatalf("egress before any turn: %s", body)
	}
	a := e.connect(alice.AccessToken)
	a.subscribe(id, 0)
	a.send(turnFrame(id, "own-1", "db-1 disk full"))
	a.until(isTurnDone)
	var eg struct {
		CaseID  string `json:"case_id"`
		Records []struct {
			Turn     int               `json:"turn"`
			Model    string            `json:"model"`
			Messages []json.RawMessage `json:"messages"`
		} `json:"records"`
	}
	rec = e.call("GET", "/api/v1/admin/cases/"+id+"/egress", alice.AccessToken, "")
	wantStatus(t, rec, http.StatusOK)
	if err := json.Unmarshal(rec.Body.Bytes(), &eg); err != nil || eg.CaseID != id || len(eg.Records) == 0 ||
		eg.Records[0].Turn != 1 || len(eg.Records[0].Messages) == 0 {
		t.Fatalf("egress after a turn: %v %s", err, rec.Body)
	}
}

func TestWSCancelStopsASlowTurn(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	e.llm.Enqueue(llmtest.Reply{Content: "too late", TTFT: time.Minute})
	c := e.connect(tok)
	c.subscribe(id, 0)
	c.send(turnFrame(id, "cx-1", "this will take a while"))
	c.until(func(f frame) bool { return f.Type == "turn_started" })
	waitFor(t, 10*time.Second, "the LLM request", func() bool { return e.llm.RequestCount() == 1 })
	start := time.Now()
	c.send(map[string]any{"type": "cancel", "case_id": id})
	frames := c.until(isTurnDone)
	if time.Since(start) > 10*time.Second {
		t.Fatalf("cancel took %s", time.Since(start))
	}
	var failed struct {
		Turn   int    `json:"turn"`
		Reason string `json:"reason"`
	}
	found := false
	for _, f := range frames {
		if f.Type == "event" && f.Kind == "turn_failed" {
			found = json.Unmarshal(f.Data, &failed) == nil
		}
		if f.Type == "delta" {
			t.Fatalf("a cancelled turn streamed: %s", f.raw)
		}
	}
	if !found || failed.Turn != 1 || failed.Reason != "cancelled" {
		t.Fatalf("want turn_failed {turn 1, cancelled}, got %+v among %d frames", failed, len(frames))
	}
	// Cancelling with nothing running is harmless.
	c.send(map[string]any{"type": "cancel", "case_id": id})
	c.roundTrip()
}

func TestWSOriginPolicy(t *testing.T) {
	e := newLiveEnv(t, Config{CORSOrigins: []string{"chrome-extension://abcdefgh"}})
	tok := e.register("alice").AccessToken
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{"chrome-extension://abcdefgh", true},
		{e.ts.URL, true}, // the API's own page
		{"https://evil.example", false},
		{"chrome-extension://other", false},
		{"null", false},
	} {
		hdr := http.Header{}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		c, resp, err := e.dialWS(tok, hdr, nil)
		if tc.ok {
			if err != nil {
				t.Fatalf("origin %q refused: %v", tc.origin, err)
			}
			c.next()
			_ = c.conn.Close()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Error-Code") != CodeOriginRefused {
			t.Fatalf("origin %q: want 403 %s, got %v %v", tc.origin, CodeOriginRefused, resp, err)
		}
	}
}

func TestWSConnectionCapAndShutdown(t *testing.T) {
	e := newLiveEnv(t, Config{WSMaxConnsPerUser: 2})
	alice := e.register("alice")
	bob := e.register("bob")
	a1, a2 := e.connect(alice.AccessToken), e.connect(alice.AccessToken)
	if _, resp, err := e.dialWS(alice.AccessToken, nil, nil); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: want 429, got %v %v", resp, err)
	}
	// The same cap applies to first-frame auth, after the upgrade.
	c, _, err := e.dialWS("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]string{"type": "auth", "token": alice.AccessToken})
	c.wantError(wsErrTooManyConns, "")
	c.expectClose(closeTooManyConns)
	b := e.connect(bob.AccessToken) // other users are not affected

	// A closed connection frees its slot.
	_ = a2.conn.Close()
	waitFor(t, 10*time.Second, "the slot to free", func() bool {
		c, _, err := e.dialWS(alice.AccessToken, nil, nil)
		if err == nil {
			_ = c.conn.Close()
		}
		return err == nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	a1.expectClose(closeGoingAway)
	b.expectClose(closeGoingAway)
	if _, resp, err := e.dialWS(alice.AccessToken, nil, nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Shutdown: want 503, got %v %v", resp, err)
	}
	if n := metricValue(e.srv.metrics.wsActive); n != 0 {
		t.Fatalf("%v connections still counted after Shutdown", n)
	}
}

// TestWSEndsWhenTheTokenExpiresUnlessReauthenticated: a connection never
// outlives its access token; a fresh auth frame for the same user keeps it
// open, one for another user or a bad one is refused without closing it.
func TestWSEndsWhenTheTokenExpiresUnlessReauthenticated(t *testing.T) {
	// The auth clock runs an hour minus `left` behind: tokens minted now
	// expire `left` from now in real time, and are valid until then.
	var lag atomic.Int64
	clock := func() time.Time { return time.Now().Add(-time.Duration(lag.Load())) }
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.env = append(o.env, func(eo *envOption) { eo.authNow = clock })
	})
	login := func(user string) string {
		rec := e.call("POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, testPassword))
		wantStatus(t, rec, http.StatusOK)
		return decode[tokenResponse](t, rec).AccessToken
	}
	long := e.register("alice").AccessToken
	bob := e.register("bob").AccessToken
	const left = 1500 * time.Millisecond
	lag.Store(int64(time.Hour - left))
	short := login("alice")
	lag.Store(0)

	// 1. Not renewed: closed with 4401 and a token_expired error frame.
	doomed := e.connect(short)
	start := time.Now()
	frames := doomed.expectClose(closeUnauthorized)
	if len(frames) == 0 || frames[len(frames)-1].Code != wsErrTokenExpired {
		t.Fatalf("frames before the close: %v, want a token_expired error", frames)
	}
	if waited := time.Since(start); waited > 20*left {
		t.Fatalf("closed %v after connecting, the token had %v left", waited, left)
	}

	// 2. Renewed in time with a fresh token of the same user: stays open.
	lag.Store(int64(time.Hour - left))
	short = login("alice")
	lag.Store(0)
	kept := e.connect(short)
	kept.send(map[string]string{"type": "auth", "token": "not-a-token"})
	kept.wantError(wsErrUnauthorized, "")
	kept.send(map[string]string{"type": "auth", "token": bob})
	kept.wantError(wsErrUnauthorized, "")
	kept.send(map[string]string{"type": "auth", "token": long})
	if f := kept.next(); f.Type != "ready" || f.UserID == "" {
		t.Fatalf("re-auth: want ready, got %s", f.raw)
	}
	time.Sleep(2 * left)
	kept.roundTrip() // still open after the first token's expiry
}

// TestWSEndsAtLogout: a logout closes every open connection of the user
// (4401, logged_out), not only their REST access; other users' stay open.
func TestWSEndsAtLogout(t *testing.T) {
	e := newLiveEnv(t, Config{})
	alice := e.register("alice").AccessToken
	bob := e.register("bob").AccessToken
	frameAuth := func(token string) *wsClient {
		c, resp, err := e.dialWS("", nil, nil)
		if err != nil {
			t.Fatalf("dial: %v (response %v)", err, resp)
		}
		c.send(map[string]string{"type": "auth", "token": token})
		return c
	}
	a1 := e.connect(alice) // authenticated on the upgrade request
	a2 := frameAuth(alice) // and by its first frame
	if f := a2.next(); f.Type != "ready" {
		t.Fatalf("want ready, got %s", f.raw)
	}
	b := e.connect(bob)
	a1.roundTrip()
	b.roundTrip()

	rec := e.call("POST", "/api/v1/auth/logout", alice, "")
	wantStatus(t, rec, http.StatusOK)
	for _, c := range []*wsClient{a1, a2} {
		frames := c.expectClose(closeUnauthorized)
		if len(frames) == 0 || frames[len(frames)-1].Code != wsErrLoggedOut {
			t.Fatalf("frames before the close: %v, want a logged_out error", frames)
		}
	}
	b.roundTrip() // bob is still connected

	// The revoked token opens no new connection, by frame or by header.
	c := frameAuth(alice)
	if frames := c.expectClose(closeUnauthorized); len(frames) == 0 || frames[len(frames)-1].Code != wsErrUnauthorized {
		t.Fatalf("frames before the close: %v, want unauthorized", frames)
	}
	if _, resp, err := e.dialWS(alice, nil, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("header auth with a revoked token: want 401, got %v %v", resp, err)
	}
}

// TestWSAckIsTimed: every ack the writer sends is timed from the turn
// frame's read (faultmaven_ws_ack_seconds), on a subscribed connection
// (the ack goes out just before the user message's event) and on one that
// is not (the ack goes out on its own).
func TestWSAckIsTimed(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	count := func() uint64 {
		var d dto.Metric
		if err := e.srv.metrics.wsAck.Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetHistogram().GetSampleCount()
	}
	before := count()

	sub := e.connect(tok)
	sub.send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	sub.until(func(f frame) bool { return f.Type == "subscribed" })
	sub.send(turnFrame(id, "timed-1", "the queue is backing up"))
	sub.until(func(f frame) bool { return f.Type == "ack" })
	sub.until(func(f frame) bool { return f.Type == "turn_done" })

	other := e.connect(tok)
	other.send(turnFrame(id, "timed-2", "and now the workers are idle"))
	other.until(func(f frame) bool { return f.Type == "ack" })

	// The writer observes an ack just after writing it, so the client can
	// read it first.
	waitFor(t, 5*time.Second, "two timed acks", func() bool { return count()-before == 2 })
}

// TestWSIdleConnectionHasNoWriterAndIsPinged: between frames a connection
// keeps no writer goroutine, its pings come from a timer and keep a silent
// client connected past the pong deadline, and frames queued later still
// go out in order through a fresh writer.
func TestWSIdleConnectionHasNoWriterAndIsPinged(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.tune = func(h *wsHub) {
			h.timing.pingPeriod = 50 * time.Millisecond
			h.timing.pongWait = time.Second
		}
	})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	c := e.connect(tok)
	var pings atomic.Int32
	c.conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	c.send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	c.until(func(f frame) bool { return f.Type == "subscribed" })

	conn := func() *wsConn {
		e.srv.ws.mu.Lock()
		defer e.srv.ws.mu.Unlock()
		for sc := range e.srv.ws.conns {
			return sc
		}
		return nil
	}()
	if conn == nil {
		t.Fatal("no server-side connection")
	}
	writing := func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return conn.writing
	}
	waitFor(t, 5*time.Second, "the writer to end once the queue is empty", func() bool { return !writing() })

	// A silent client (it only answers pings, inside reads) stays connected
	// for well over pongWait: the timer's pings keep extending the deadline.
	// Staying open that long needs the timer to have re-armed at least once.
	if _, err := c.readFrame(2500 * time.Millisecond); err == nil || !isTimeout(err) {
		t.Fatalf("idle read: %v, want a timeout with the connection open", err)
	}
	if n := pings.Load(); n < 2 {
		t.Fatalf("%d pings: the ping timer did not re-arm", n)
	}
	if writing() {
		t.Fatal("a writer runs on an idle connection")
	}
	// gorilla's connection is unusable after a read timeout; a new one
	// shows the server side still streams in order through new writers.
	c2 := e.connect(tok)
	c2.send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	c2.until(func(f frame) bool { return f.Type == "subscribed" })
	c2.send(turnFrame(id, "idle-1", "disk usage alert on the build host"))
	frames := c2.until(func(f frame) bool { return f.Type == "turn_done" })
	var order []string
	for _, f := range frames {
		if len(order) == 0 || order[len(order)-1] != f.Type {
			order = append(order, f.Type)
		}
	}
	if got := strings.Join(order, ","); !strings.HasPrefix(got, "ack,event,turn_started,delta") || !strings.HasSuffix(got, "event,turn_done") {
		t.Fatalf("frame order %s", got)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// TestWSCloseDuringHandshake: a logout or a shutdown can close a
// connection the hub knows but that is not upgraded yet. Nothing may write
// to the missing socket then; once the upgrade is done the close goes out
// and the connection's last writer ends.
func TestWSCloseDuringHandshake(t *testing.T) {
	e := newLiveEnv(t, Config{})
	for _, tc := range []struct {
		name  string
		close func(c *wsConn)
		code  int
	}{
		{"shutdown", func(c *wsConn) { c.closeNow(closeGoingAway, "server shutting down") }, closeGoingAway},
		{"logout", func(c *wsConn) {
			c.closeAfter(closeUnauthorized, "logged out", errorFrame{Type: "error", Code: wsErrLoggedOut, Message: "signed out"})
		}, closeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newWSConn(e.srv, &requestInfo{id: "req-" + tc.name})
			defer c.cancel()
			tc.close(c) // before the upgrade: no socket yet
			c.mu.Lock()
			started := c.writing
			c.mu.Unlock()
			if started {
				t.Fatal("a writer started before the upgrade")
			}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := e.srv.ws.upgrader.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				e.srv.ws.attach(c, ws)
				c.markAttached()
			}))
			defer ts.Close()
			conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var ce *websocket.CloseError
			for {
				_, _, err := conn.ReadMessage()
				if err == nil {
					continue // the logout's error frame
				}
				if !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("read: %v, want close %d", err, tc.code)
				}
				break
			}
			select {
			case <-c.writerDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the last writer did not end")
			}
		})
	}
}
