package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

// Every test of this package must leave no goroutine behind: connection
// readers and writers, case actors, the fake LLM's handlers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// liveEnv is env served over real loopback HTTP with a fake LLM behind
// the case actors, for WebSocket and turn tests.
type liveEnv struct {
	*env
	llm *llmtest.Server
	ts  *httptest.Server
}

type liveOption struct {
	tune   func(h *wsHub) // adjust WebSocket clocks and limits before serving
	sndBuf int            // server socket send buffer (bytes) of the first accepted connection
	env    []func(*envOption)
}

func newLiveEnv(t testing.TB, cfg Config, opts ...func(*liveOption)) *liveEnv {
	t.Helper()
	var o liveOption
	for _, f := range opts {
		f(&o)
	}
	fake := llmtest.New()
	t.Cleanup(fake.Close) // after the cases have shut down: a turn may still be streaming
	e := newEnv(t, cfg, append([]func(*envOption){func(eo *envOption) { eo.llm = fake }}, o.env...)...)
	if o.tune != nil {
		o.tune(e.srv.ws)
	}
	ts := httptest.NewUnstartedServer(e.h)
	if o.sndBuf > 0 {
		ts.Listener = &smallBufListener{Listener: ts.Listener, sndBuf: o.sndBuf}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown: %v", err)
		}
	})
	return &liveEnv{env: e, llm: fake, ts: ts}
}

// smallBufListener shrinks the send buffer of the first accepted
// connection, so a client that stops reading backs the server up after a
// few KiB, not MiBs.
type smallBufListener struct {
	net.Listener
	sndBuf int
	done   atomic.Bool
}

func (l *smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil && !l.done.Swap(true) {
		_ = tc.SetWriteBuffer(l.sndBuf)
	}
	return c, err
}

func (e *liveEnv) wsURL() string { return "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/api/v1/ws" }

// frame is any server frame, decoded loosely for assertions.
type frame struct {
	Type        string          `json:"type"`
	CaseID      string          `json:"case_id"`
	Seq         uint64          `json:"seq"`
	Kind        string          `json:"kind"`
	Data        json.RawMessage `json:"data"`
	Turn        int             `json:"turn"`
	Text        string          `json:"text"`
	HeadSeq     *uint64         `json:"head_seq"`
	Code        string          `json:"code"`
	Message     string          `json:"message"`
	Ref         string          `json:"ref"`
	ClientMsgID string          `json:"client_msg_id"`
	Protocol    int             `json:"protocol"`
	UserID      string          `json:"user_id"`
	raw         string
}

// messageData is the data of an event of kind "message".
type messageData struct {
	MessageID   string `json:"message_id"`
	Role        string `json:"role"`
	Content     string `json:"content"`
	TurnNumber  int    `json:"turn_number"`
	ClientMsgID string `json:"client_msg_id"`
}

func (f frame) message(t *testing.T) messageData {
	t.Helper()
	var m messageData
	if f.Kind != "message" || json.Unmarshal(f.Data, &m) != nil {
		t.Fatalf("not a message event: %s", f.raw)
	}
	return m
}

// wsClient is a test's end of a connection; only the test goroutine uses it.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
}

// dialWS connects; token != "" authenticates on the upgrade request. hdr
// adds headers (Origin, ...). It returns the handshake response even when
// the upgrade is refused.
func (e *liveEnv) dialWS(token string, hdr http.Header, dialer *websocket.Dialer) (*wsClient, *http.Response, error) {
	e.t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if dialer == nil {
		dialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	conn, resp, err := dialer.Dial(e.wsURL(), hdr)
	if resp != nil && resp.Body != nil {
		e.t.Cleanup(func() { _ = resp.Body.Close() })
	}
	if err != nil {
		return nil, resp, err
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	return &wsClient{t: e.t, conn: conn}, resp, nil
}

// connect dials with the bearer header and reads the ready frame.
func (e *liveEnv) connect(token string) *wsClient {
	e.t.Helper()
	c, resp, err := e.dialWS(token, nil, nil)
	if err != nil {
		e.t.Fatalf("dial: %v (response %v)", err, resp)
	}
	if f := c.next(); f.Type != "ready" || f.Protocol != 1 || f.UserID == "" {
		e.t.Fatalf("want ready, got %s", f.raw)
	}
	return c
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// readFrame reads one frame within d.
func (c *wsClient) readFrame(d time.Duration) (frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	mt, b, err := c.conn.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if mt != websocket.TextMessage {
		return frame{}, errors.New("binary frame from server")
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	f.raw = string(b)
	return f, nil
}

// next reads one frame or fails the test after 10 s.
func (c *wsClient) next() frame {
	c.t.Helper()
	f, err := c.readFrame(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// until reads frames until stop accepts one; it returns all of them, the
// accepted one last.
func (c *wsClient) until(stop func(frame) bool) []frame {
	c.t.Helper()
	var got []frame
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f := c.next()
		got = append(got, f)
		if stop(f) {
			return got
		}
	}
	c.t.Fatalf("no matching frame within 20s; got %d frames", len(got))
	return nil
}

// expectClose reads (discarding frames) until the server closes with code.
func (c *wsClient) expectClose(code int) []frame {
	c.t.Helper()
	var got []frame
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f, err := c.readFrame(time.Until(deadline))
		if err == nil {
			got = append(got, f)
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != code {
				c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
			}
			return got
		}
		c.t.Fatalf("want close %d, got %v after %d frames", code, err, len(got))
	}
	c.t.Fatalf("no close within 20s")
	return nil
}

// roundTrip proves the connection still works: ping → pong.
func (c *wsClient) roundTrip() {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	if f := c.next(); f.Type != "pong" {
		c.t.Fatalf("want pong, got %s", f.raw)
	}
}

func (c *wsClient) subscribe(caseID string, since uint64) []frame {
	c.t.Helper()
	c.send(map[string]any{"type": "subscribe", "case_id": caseID, "since_seq": since})
	frames := c.until(func(f frame) bool { return f.Type == "subscribed" || f.Type == "error" })
	if last := frames[len(frames)-1]; last.Type != "subscribed" || last.CaseID != caseID || last.HeadSeq == nil {
		c.t.Fatalf("subscribe %s: %s", caseID, last.raw)
	}
	return frames
}

func (c *wsClient) wantError(code, ref string) frame {
	c.t.Helper()
	f := c.next()
	if f.Type != "error" || f.Code != code || f.Ref != ref || f.Message == "" {
		c.t.Fatalf("want error %s ref %q, got %s", code, ref, f.raw)
	}
	return f
}

// newCase creates a case over REST for the owner of token.
func (e *env) newCase(token string) string {
	e.t.Helper()
	rec := e.call("POST", "/api/v1/cases", token, `{"title":"disk full on db-1"}`)
	wantStatus(e.t, rec, http.StatusCreated)
	return decode[map[string]any](e.t, rec)["case_id"].(string)
}

// waitFor polls cond until it holds or fails the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
