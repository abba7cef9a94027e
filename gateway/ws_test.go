package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/gateway/ws"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
)

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
			if m := messageOf(t, f); m.Role == "assistant" {
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
		if f := c.Next(); f.Type != "ready" || f.Protocol != 1 || f.UserID != alice.User.UserID {
			t.Fatalf("want ready for %s, got %s", alice.User.UserID, f.Raw)
		}
		c.RoundTrip()
	})
	t.Run("first frame", func(t *testing.T) {
		c, _, err := e.dialWS("", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Send(map[string]string{"type": "auth", "token": alice.AccessToken})
		if f := c.Next(); f.Type != "ready" || f.UserID != alice.User.UserID {
			t.Fatalf("want ready, got %s", f.Raw)
		}
		c.RoundTrip()
		// A later auth frame renews the connection's token (same user).
		c.Send(map[string]string{"type": "auth", "token": alice.AccessToken})
		if f := c.Next(); f.Type != "ready" || f.UserID != alice.User.UserID {
			t.Fatalf("re-auth: want ready, got %s", f.Raw)
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
		c.Send(map[string]string{"type": "auth", "token": "not-a-token"})
		c.WantError(ws.CodeUnauthorized, "")
		c.ExpectClose(ws.CloseUnauthorized)
	})
}

func TestWSNothingBeforeAuth(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.tune = func(c *ws.Config) { c.Timing.AuthWait = 300 * time.Millisecond }
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
		c.SendRaw(first)
		frames := c.ExpectClose(ws.CloseUnauthorized)
		if len(frames) != 1 || frames[0].Type != "error" || frames[0].Code != ws.CodeUnauthorized {
			t.Fatalf("after %s: want one unauthorized error before the close, got %v", first, frames)
		}
	}
	// Silence is refused too, once the auth window has passed.
	c, _, err := e.dialWS("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if frames := c.ExpectClose(ws.CloseUnauthorized); len(frames) != 1 || frames[0].Code != ws.CodeUnauthorized {
		t.Fatalf("auth timeout: %v", frames)
	}
}

func TestWSSubscribeReplayThenLive(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"disk full on db-2"}`), http.StatusOK)

	c := e.connect(tok)
	frames := c.Subscribe(id, 0)
	if len(frames) != 3 || frames[0].Kind != "created" || frames[1].Kind != "title" ||
		frames[0].Seq != 1 || frames[1].Seq != 2 || *frames[2].HeadSeq != 2 {
		t.Fatalf("replay: %v", frames)
	}
	// From the middle: only what follows.
	c2 := e.connect(tok)
	if frames := c2.Subscribe(id, 1); len(frames) != 2 || frames[0].Seq != 2 {
		t.Fatalf("replay since 1: %v", frames)
	}
	// Live.
	wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"disk full on db-3"}`), http.StatusOK)
	for _, cl := range []*wsClient{c, c2} {
		if f := cl.Next(); f.Type != "event" || f.Kind != "title" || f.Seq != 3 || !strings.Contains(string(f.Data), "db-3") {
			t.Fatalf("live: %s", f.Raw)
		}
	}
	// Unsubscribed connections hear nothing more.
	c.Send(map[string]any{"type": "unsubscribe", "case_id": id})
	c.RoundTrip() // the unsubscribe has been handled
	wantStatus(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"disk full on db-4"}`), http.StatusOK)
	if f := c2.Next(); f.Seq != 4 {
		t.Fatalf("live: %s", f.Raw)
	}
	c.RoundTrip() // would fail on the title event if it had been delivered
}

func TestWSTurnStreamResumeAndDedupe(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	const answer = "Your disk is full: /var/log holds 40 GB of rotated logs. Delete them, then fix logrotate."
	e.llm.Enqueue(llmtest.Reply{Content: answer, ChunkChars: 3})

	c := e.connect(tok)
	head := *lastFrame(c.Subscribe(id, 0)).HeadSeq
	c.Send(wstest.TurnFrame(id, "m-1", "db-1 says no space left on device"))
	frames := c.Until(isTurnDone)

	ack := frames[0]
	if ack.Type != "ack" || ack.ClientMsgID != "m-1" || ack.CaseID != id || ack.Seq != head+1 || ack.Turn != 1 {
		t.Fatalf("the first frame of a turn must be its ack: %s", ack.Raw)
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
	user := messageOf(t, frames[1])
	if frames[1].Seq != ack.Seq || user.Role != "user" || user.ClientMsgID != "m-1" || user.TurnNumber != 1 {
		t.Fatalf("the ack must name the user message: %s / %s", ack.Raw, frames[1].Raw)
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
		t.Fatalf("turn_done: %s", last.Raw)
	}
	lastSeen := seqs[len(seqs)-1]

	// The same client_msg_id again: the same ack, no second turn.
	requests := e.llm.RequestCount()
	c.Send(wstest.TurnFrame(id, "m-1", "db-1 says no space left on device"))
	dup := c.Next()
	if dup.Type != "ack" || dup.ClientMsgID != ack.ClientMsgID || dup.CaseID != ack.CaseID || dup.Seq != ack.Seq || dup.Turn != ack.Turn {
		t.Fatalf("repeated client_msg_id: %s, first ack %s", dup.Raw, ack.Raw)
	}
	// The connection drops; meanwhile another client runs a turn.
	_ = c.Conn.Close()
	other := e.connect(tok)
	other.Send(wstest.TurnFrame(id, "m-2", "and now?"))
	ack2 := other.Next()
	if ack2.Type != "ack" || ack2.Turn != 2 {
		t.Fatalf("a second turn is turn 2 (the repeat started none): %s", ack2.Raw)
	}
	wstest.WaitFor(t, 10*time.Second, "turn 2 to finish", func() bool {
		row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id+"/messages", tok, ""))
		return row["total_count"] == float64(4)
	})
	if n := e.llm.RequestCount(); n != requests+1 {
		t.Fatalf("%d LLM requests after the repeat and one new turn, want %d", n, requests+1)
	}

	// Resume from the last seen seq: exactly the events missed, in order.
	back := e.connect(tok)
	missed := back.Subscribe(id, lastSeen)
	headNow := *missed[len(missed)-1].HeadSeq
	missed = missed[:len(missed)-1]
	if len(missed) == 0 || uint64(len(missed)) != headNow-lastSeen {
		t.Fatalf("resume since %d: %d events, head %d", lastSeen, len(missed), headNow)
	}
	for i, f := range missed {
		if f.Type != "event" || f.Seq != lastSeen+1+uint64(i) {
			t.Fatalf("resume: frame %d is %s", i, f.Raw)
		}
	}
	if m := messageOf(t, missed[0]); m.ClientMsgID != "m-2" || m.Role != "user" {
		t.Fatalf("the first missed event is turn 2's question: %s", missed[0].Raw)
	}
}

func TestWSTwoConnectionsSeeOneStream(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	e.llm.Enqueue(llmtest.Reply{Content: strings.Repeat("check the inode count. ", 20), ChunkChars: 5})
	a, b := e.connect(tok), e.connect(tok)
	a.Subscribe(id, 0)
	b.Subscribe(id, 0)
	a.Send(wstest.TurnFrame(id, "two-1", "df says 100%"))
	fa, fb := a.Until(isTurnDone), b.Until(isTurnDone)
	for name, frames := range map[string][]frame{"sender": fa, "watcher": fb} {
		msg := assistantMessage(t, frames)
		if got := deltaText(frames, 1); got != msg.Content || msg.Content == "" {
			t.Fatalf("%s: deltas %q, answer %q", name, got, msg.Content)
		}
	}
	for _, f := range fb {
		if f.Type == "ack" {
			t.Fatalf("the watcher got the sender's ack: %s", f.Raw)
		}
	}
}

func TestWSSlowConsumerIsCutOff(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.sndBuf = 4096 // the slow client's connection, the first to be accepted
		o.tune = func(c *ws.Config) {
			c.Limits.QueueFrames = 32
			c.Timing.WriteWait = 30 * time.Second // the cut, not a write timeout, must end it
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
	slow.Next() // ready
	slow.Subscribe(id, 0)
	fast := e.connect(tok)
	head := *lastFrame(fast.Subscribe(id, 0)).HeadSeq

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
			f, err := fast.ReadFrame(10 * time.Second)
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
			t.Fatalf("the fast client missed event %d: %s", head+uint64(renames), f.Raw)
		}
	}
	fast.Send(map[string]string{"type": "ping"})
	if f, ok := <-got; ok {
		t.Fatalf("the fast client got more than the renames: %s", f.Raw)
	}
	slow.ExpectClose(ws.CloseSlowConsumer)

	e.llm.Enqueue(llmtest.Reply{Content: strings.Repeat("still here. ", 50), ChunkChars: 2})
	fast.Send(wstest.TurnFrame(id, "after-cut", "thanks"))
	frames := fast.Until(isTurnDone)
	if frames[0].Type != "ack" || deltaText(frames, 1) != assistantMessage(t, frames).Content {
		t.Fatalf("after the cut: %s", frames[0].Raw)
	}
}

func TestWSBadFramesKeepTheConnection(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	c := e.connect(tok)
	for _, tc := range []struct{ frame, code, ref string }{
		{`not json`, ws.CodeMalformed, ""},
		{`[1,2]`, ws.CodeMalformed, ""},
		{`{"type":"teleport","case_id":"c1"}`, ws.CodeUnknownType, "c1"},
		{`{"case_id":"c1"}`, ws.CodeInvalid, "c1"},
		{`{"type":"subscribe"}`, ws.CodeInvalid, ""},
		{`{"type":"subscribe","case_id":"c1","since_seq":"ten"}`, ws.CodeInvalid, "c1"},
		{`{"type":"subscribe","case_id":"c1","since_seq":-1}`, ws.CodeInvalid, "c1"},
		{`{"type":"turn","case_id":"c1","text":"hi"}`, ws.CodeInvalid, "c1"},
		{`{"type":"turn","case_id":"c1","client_msg_id":"m1"}`, ws.CodeInvalid, "m1"},
		{`{"type":"turn","case_id":"c1","client_msg_id":"rest:x","text":"hi"}`, ws.CodeInvalid, "rest:x"},
		{`{"type":"subscribe","case_id":"case_00000000000000000000000000"}`, ws.CodeNotFound, "case_00000000000000000000000000"},
		{`{"type":"turn","case_id":"nope","client_msg_id":"m9","text":"hi"}`, ws.CodeNotFound, "m9"},
	} {
		c.SendRaw(tc.frame)
		c.WantError(tc.code, tc.ref)
	}
	_ = c.Conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	c.WantError(ws.CodeMalformed, "")
	c.RoundTrip()
}

func TestWSFrameLimits(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) {
		o.tune = func(c *ws.Config) { c.Limits.Rate, c.Limits.Burst = 1, 3 }
	})
	tok := e.register("alice").AccessToken
	c := e.connect(tok)
	for range 6 {
		c.Send(map[string]string{"type": "ping"})
	}
	var pongs, limited int
	for range 6 {
		switch f := c.Next(); {
		case f.Type == "pong":
			pongs++
		case f.Type == "error" && f.Code == ws.CodeRateLimited:
			limited++
		default:
			t.Fatalf("unexpected %s", f.Raw)
		}
	}
	if pongs < 3 || limited == 0 {
		t.Fatalf("%d pongs and %d rate_limited errors for 6 pings with a burst of 3", pongs, limited)
	}
	// A frame over 512 KiB ends the connection with 1009.
	c.SendRaw(`{"type":"ping","pad":"` + strings.Repeat("x", 600<<10) + `"}`)
	c.ExpectClose(websocket.CloseMessageTooBig)
}

func TestWSOtherUsersCaseIsNotFound(t *testing.T) {
	e := newLiveEnv(t, Config{})
	alice := e.register("alice") // the first account is the admin
	bob := e.register("bob")
	id := e.newCase(alice.AccessToken)

	c := e.connect(bob.AccessToken)
	c.Send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	c.WantError(ws.CodeNotFound, id)
	c.Send(wstest.TurnFrame(id, "steal-1", "give me your secrets"))
	c.WantError(ws.CodeNotFound, "steal-1")
	c.Send(map[string]any{"type": "cancel", "case_id": id})
	c.WantError(ws.CodeNotFound, id)
	c.RoundTrip()
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
	a.Subscribe(id, 0)
	a.Send(wstest.TurnFrame(id, "own-1", "db-1 disk full"))
	a.Until(isTurnDone)
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
	c.Subscribe(id, 0)
	c.Send(wstest.TurnFrame(id, "cx-1", "this will take a while"))
	c.Until(func(f frame) bool { return f.Type == "turn_started" })
	wstest.WaitFor(t, 10*time.Second, "the LLM request", func() bool { return e.llm.RequestCount() == 1 })
	start := time.Now()
	c.Send(map[string]any{"type": "cancel", "case_id": id})
	frames := c.Until(isTurnDone)
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
			t.Fatalf("a cancelled turn streamed: %s", f.Raw)
		}
	}
	if !found || failed.Turn != 1 || failed.Reason != "cancelled" {
		t.Fatalf("want turn_failed {turn 1, cancelled}, got %+v among %d frames", failed, len(frames))
	}
	// Cancelling with nothing running is harmless.
	c.Send(map[string]any{"type": "cancel", "case_id": id})
	c.RoundTrip()
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
			c.Next()
			_ = c.Conn.Close()
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
	c.Send(map[string]string{"type": "auth", "token": alice.AccessToken})
	c.WantError(ws.CodeTooManyConns, "")
	c.ExpectClose(ws.CloseTooManyConns)
	b := e.connect(bob.AccessToken) // other users are not affected

	// A closed connection frees its slot.
	_ = a2.Conn.Close()
	wstest.WaitFor(t, 10*time.Second, "the slot to free", func() bool {
		c, _, err := e.dialWS(alice.AccessToken, nil, nil)
		if err == nil {
			_ = c.Conn.Close()
		}
		return err == nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	a1.ExpectClose(ws.CloseGoingAway)
	b.ExpectClose(ws.CloseGoingAway)
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
	frames := doomed.ExpectClose(ws.CloseUnauthorized)
	if len(frames) == 0 || frames[len(frames)-1].Code != ws.CodeTokenExpired {
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
	kept.Send(map[string]string{"type": "auth", "token": "not-a-token"})
	kept.WantError(ws.CodeUnauthorized, "")
	kept.Send(map[string]string{"type": "auth", "token": bob})
	kept.WantError(ws.CodeUnauthorized, "")
	kept.Send(map[string]string{"type": "auth", "token": long})
	if f := kept.Next(); f.Type != "ready" || f.UserID == "" {
		t.Fatalf("re-auth: want ready, got %s", f.Raw)
	}
	time.Sleep(2 * left)
	kept.RoundTrip() // still open after the first token's expiry
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
		c.Send(map[string]string{"type": "auth", "token": token})
		return c
	}
	a1 := e.connect(alice) // authenticated on the upgrade request
	a2 := frameAuth(alice) // and by its first frame
	if f := a2.Next(); f.Type != "ready" {
		t.Fatalf("want ready, got %s", f.Raw)
	}
	b := e.connect(bob)
	a1.RoundTrip()
	b.RoundTrip()

	rec := e.call("POST", "/api/v1/auth/logout", alice, "")
	wantStatus(t, rec, http.StatusOK)
	for _, c := range []*wsClient{a1, a2} {
		frames := c.ExpectClose(ws.CloseUnauthorized)
		if len(frames) == 0 || frames[len(frames)-1].Code != ws.CodeLoggedOut {
			t.Fatalf("frames before the close: %v, want a logged_out error", frames)
		}
	}
	b.RoundTrip() // bob is still connected

	// The revoked token opens no new connection, by frame or by header.
	c := frameAuth(alice)
	if frames := c.ExpectClose(ws.CloseUnauthorized); len(frames) == 0 || frames[len(frames)-1].Code != ws.CodeUnauthorized {
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
	sub.Send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	sub.Until(func(f frame) bool { return f.Type == "subscribed" })
	sub.Send(wstest.TurnFrame(id, "timed-1", "the queue is backing up"))
	sub.Until(func(f frame) bool { return f.Type == "ack" })
	sub.Until(func(f frame) bool { return f.Type == "turn_done" })

	other := e.connect(tok)
	other.Send(wstest.TurnFrame(id, "timed-2", "and now the workers are idle"))
	other.Until(func(f frame) bool { return f.Type == "ack" })

	// The writer observes an ack just after writing it, so the client can
	// read it first.
	wstest.WaitFor(t, 5*time.Second, "two timed acks", func() bool { return count()-before == 2 })
}

// TestWSFrameBoundsMatchREST: package ws checks a frame's fields against
// its own constants; they must stay the bounds REST applies to the same
// fields.
func TestWSFrameBoundsMatchREST(t *testing.T) {
	if ws.MaxTokenLen != maxTokenLen || ws.MaxCaseIDLen != maxCaseIDLen || ws.MaxTurnTextBytes != maxTurnTextBytes {
		t.Fatalf("ws bounds %d/%d/%d, REST %d/%d/%d (token, case id, turn text)",
			ws.MaxTokenLen, ws.MaxCaseIDLen, ws.MaxTurnTextBytes, maxTokenLen, maxCaseIDLen, maxTurnTextBytes)
	}
	if DefaultWSMaxConnsPerUser != ws.DefaultMaxConnsPerUser {
		t.Fatalf("default connections per user: gateway %d, ws %d", DefaultWSMaxConnsPerUser, ws.DefaultMaxConnsPerUser)
	}
}
