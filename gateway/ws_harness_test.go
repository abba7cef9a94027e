package gateway

import (
	"context"
	"encoding/json"
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
	"github.com/faultmaven/faultmaven/gateway/ws"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
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
	tune   func(c *ws.Config) // adjust WebSocket clocks and limits before serving
	sndBuf int                // server socket send buffer (bytes) of the first accepted connection
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
	e := newEnv(t, cfg, append([]func(*envOption){func(eo *envOption) { eo.llm, eo.tuneWS = fake, o.tune }}, o.env...)...)
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
type frame = wstest.Frame

// messageData is the data of an event of kind "message".
type messageData struct {
	MessageID   string `json:"message_id"`
	Role        string `json:"role"`
	Content     string `json:"content"`
	TurnNumber  int    `json:"turn_number"`
	ClientMsgID string `json:"client_msg_id"`
}

// messageOf is the data of f, which must be a message event.
func messageOf(t *testing.T, f frame) messageData {
	t.Helper()
	var m messageData
	if f.Kind != "message" || json.Unmarshal(f.Data, &m) != nil {
		t.Fatalf("not a message event: %s", f.Raw)
	}
	return m
}

// wsClient is a test's end of a connection.
type wsClient = wstest.Client

// dialWS connects; token != "" authenticates on the upgrade request. hdr
// adds headers (Origin, ...). It returns the handshake response even when
// the upgrade is refused.
func (e *liveEnv) dialWS(token string, hdr http.Header, dialer *websocket.Dialer) (*wsClient, *http.Response, error) {
	e.t.Helper()
	return wstest.Dial(e.t, e.wsURL(), token, hdr, dialer)
}

// connect dials with the bearer header and reads the ready frame.
func (e *liveEnv) connect(token string) *wsClient {
	e.t.Helper()
	return wstest.Connect(e.t, e.wsURL(), token)
}

// newCase creates a case over REST for the owner of token.
func (e *env) newCase(token string) string {
	e.t.Helper()
	rec := e.call("POST", "/api/v1/cases", token, `{"title":"disk full on db-1"}`)
	wantStatus(e.t, rec, http.StatusCreated)
	return decode[map[string]any](e.t, rec)["case_id"].(string)
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
