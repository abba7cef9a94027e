package ws

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/actorstest"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
	"github.com/faultmaven/faultmaven/persistence"
)

// Every test of this package must leave no goroutine behind: connection
// readers and writers, case actors, the fake LLM's handlers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The real services satisfy the consumer interfaces.
var (
	_ CaseService   = (*actors.Cases)(nil)
	_ TokenVerifier = (*auth.Service)(nil)
)

// testMetrics are unregistered series for a Hub under test.
func testMetrics() Metrics {
	c := func(name string) prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: name}) }
	return Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "connections"}),
		FramesIn:    c("frames_in_total"),
		FramesOut:   c("frames_out_total"),
		Coalesced:   c("deltas_coalesced_total"),
		SlowCloses:  c("slow_consumer_closes_total"),
		Refused:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused_total"}, []string{"reason"}),
		AckSeconds:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ack_seconds"}),
	}
}

// liveEnv is a Hub served over real loopback HTTP, in front of the real
// case system on Pebble over an in-memory filesystem, with a fake LLM
// behind the case actors. Tokens are verified by a table (fakeAuth); the
// gateway's tests run the same protocol through the whole server.
type liveEnv struct {
	t     testing.TB
	hub   *Hub
	cases *actors.Cases
	llm   *llmtest.Server
	ts    *httptest.Server
	auth  *fakeAuth
}

func newLiveEnv(t testing.TB, cfg Config) *liveEnv {
	t.Helper()
	fake := llmtest.New()
	t.Cleanup(fake.Close) // after the cases have shut down: a turn may still be streaming
	_, space := actorstest.Store(t, filepath.Join(t.TempDir(), "data"), &persistence.Options{FS: vfs.NewMem()})
	deps := actors.Deps{Keyspace: space(persistence.SpaceCase)}
	actorstest.WithLLM(t, &deps, fake, space(persistence.SpaceAudit))
	cases := actorstest.Start(t, actors.Config{}, deps)
	fa := &fakeAuth{tokens: map[string]auth.Principal{}}
	hub, err := New(cfg, Deps{
		Auth: fa, Cases: cases, Evidence: noEvidence{}, Metrics: testMetrics(),
		HTTP: fakeRequests{fa}, AllowOrigin: func(string) bool { return false }, ClientError: testClientError,
	})
	if err != nil {
		t.Fatalf("ws.New: %v", err)
	}
	ts := httptest.NewServer(hub)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("ws Shutdown: %v", err)
		}
	})
	return &liveEnv{t: t, hub: hub, cases: cases, llm: fake, ts: ts, auth: fa}
}

// fakeAuth knows the tokens register handed out.
type fakeAuth struct {
	mu     sync.Mutex
	tokens map[string]auth.Principal
}

func (a *fakeAuth) Verify(_ context.Context, token string) (auth.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.tokens[token]
	if !ok {
		return auth.Principal{}, auth.ErrInvalidToken
	}
	return p, nil
}

// fakeRequests stands in for the gateway's request bookkeeping.
type fakeRequests struct{ auth *fakeAuth }

func (fakeRequests) RequestID(*http.Request) string { return "req-test" }

func (q fakeRequests) Authenticate(r *http.Request) (auth.Principal, error) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return q.auth.Verify(r.Context(), token)
}

func (fakeRequests) Upgraded(*http.Request) {}

func (fakeRequests) WriteError(w http.ResponseWriter, _ *http.Request, err error) {
	status := http.StatusUnauthorized
	switch {
	case errors.Is(err, ErrOriginRefused):
		status = http.StatusForbidden
	case errors.Is(err, ErrBadHandshake):
		status = http.StatusBadRequest
	case errors.Is(err, ErrTooManyConns):
		status = http.StatusTooManyRequests
	case errors.Is(err, ErrShuttingDown):
		status = http.StatusServiceUnavailable
	}
	http.Error(w, err.Error(), status)
}

// testClientError is a small part of the gateway's table.
func testClientError(err error) ClientError {
	switch {
	case errors.Is(err, actors.ErrNotFound):
		return ClientError{Code: "CASE_NOT_FOUND", Frame: CodeNotFound, Message: "Case not found"}
	case errors.Is(err, auth.ErrInvalidToken):
		return ClientError{Code: "INVALID_TOKEN", Frame: CodeUnauthorized, Message: "Invalid or expired token"}
	}
	return ClientError{Code: "INTERNAL_ERROR", Frame: CodeInternal, Message: "internal error", Internal: true, ServerFault: true}
}

// noEvidence is a case without uploaded files.
type noEvidence struct{}

func (noEvidence) Ref(context.Context, string, string) (actors.EvidenceRef, error) {
	return actors.EvidenceRef{}, evidence.ErrNotFound
}

// register makes up a user and returns their access token.
func (e *liveEnv) register(username string) string {
	e.auth.mu.Lock()
	defer e.auth.mu.Unlock()
	token := "tok-" + username
	e.auth.tokens[token] = auth.Principal{UserID: "user-" + username, Username: username}
	return token
}

// newCase creates a case for the owner of token.
func (e *liveEnv) newCase(token string) string {
	e.t.Helper()
	p, err := e.auth.Verify(context.Background(), token)
	if err != nil {
		e.t.Fatal(err)
	}
	row, err := e.cases.Create(context.Background(), actors.CreateCase{Owner: p.UserID, Title: "disk full on db-1"})
	if err != nil {
		e.t.Fatalf("create case: %v", err)
	}
	return row.CaseID
}

func (e *liveEnv) wsURL() string { return "ws" + strings.TrimPrefix(e.ts.URL, "http") }

// frame is any server frame, decoded loosely for assertions.
type frame = wstest.Frame

// wsClient is a test's end of a connection.
type wsClient = wstest.Client

// connect dials with the bearer header and reads the ready frame.
func (e *liveEnv) connect(token string) *wsClient {
	e.t.Helper()
	return wstest.Connect(e.t, e.wsURL(), token)
}
