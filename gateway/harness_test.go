package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/actorstest"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/session"
	"github.com/faultmaven/faultmaven/gateway/ws"
	"github.com/faultmaven/faultmaven/persistence"
)

// The real services satisfy the consumer interfaces.
var (
	_ AuthService     = (*auth.Service)(nil)
	_ SessionService  = (*session.Service)(nil)
	_ CaseService     = (*actors.Cases)(nil)
	_ EvidenceService = (*evidence.Store)(nil)
)

// tinyArgon keeps password hashing far below a millisecond under -race.
var tinyArgon = auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

const testPassword = "correct horse battery"

// env is a Server wired to the real auth, session, case and evidence
// services on a Pebble store over an in-memory filesystem (or the disk,
// with onDisk) and a blob store on disk, logging into an observer.
type env struct {
	t     testing.TB
	srv   *Server
	h     http.Handler
	auth  *auth.Service
	sess  *session.Service
	cases *actors.Cases
	evid  *evidence.Store
	kb    *embed.KB
	db    *persistence.Store
	// dataDir is the data directory, alone in a directory of its own
	// (filepath.Dir(dataDir) holds nothing else).
	dataDir string
	logs    *observer.ObservedLogs
	reg     *prometheus.Registry
	ready   func() error
}

type envOption struct {
	closedRegistration bool
	ready              func() error
	// llm, when set, answers turns (through the real llm.Chain).
	llm      *llmtest.Server
	casesCfg actors.Config
	// onDisk runs Pebble on the real filesystem too.
	onDisk      bool
	evidenceCfg evidence.Config
	// authNow, when set, is the auth service's clock (token issue and
	// expiry checks).
	authNow func() time.Time
	// tuneWS, when set, adjusts the WebSocket clocks and limits.
	tuneWS func(*ws.Config)
}

func newEnv(t testing.TB, cfg Config, opts ...func(*envOption)) *env {
	t.Helper()
	var o envOption
	for _, f := range opts {
		f(&o)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	popts := &persistence.Options{FS: vfs.NewMem()} // blobs are always on disk
	if o.onDisk {
		popts = nil
	}
	store, space := actorstest.Store(t, dataDir, popts)
	authSvc, err := auth.New(space(persistence.SpaceAuth), auth.Config{
		AllowRegistration: !o.closedRegistration,
		KeyFile:           filepath.Join(t.TempDir(), "jwt.key"),
		Argon2:            tinyArgon,
		Now:               o.authNow,
	})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	sessSvc, err := session.New(space(persistence.SpaceSession), session.Config{})
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	evidKS := space(persistence.SpaceEvid)
	evid, err := evidence.New(evidKS, evidKS.Blobs(), o.evidenceCfg)
	if err != nil {
		t.Fatalf("evidence.New: %v", err)
	}
	kbKS := space(persistence.SpaceKB)
	kb, err := embed.Open(kbKS, kbKS.Blobs(), embed.Config{})
	if err != nil {
		t.Fatalf("embed.Open: %v", err)
	}
	t.Cleanup(func() { _ = kb.Close() })
	deps := actors.Deps{Keyspace: space(persistence.SpaceCase), Evidence: NewEvidenceSource(evid), Knowledge: NewKnowledgeSource(kb)}
	if o.llm != nil {
		actorstest.WithLLM(t, &deps, o.llm, space(persistence.SpaceAudit))
	}
	cases := actorstest.Start(t, o.casesCfg, deps)
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	e := &env{t: t, auth: authSvc, sess: sessSvc, cases: cases, evid: evid, kb: kb, db: store, dataDir: dataDir,
		logs: logs, reg: reg, ready: o.ready}
	srv, err := newServer(cfg, Deps{
		Logger: zap.New(core), Auth: authSvc, Sessions: sessSvc, Cases: cases, Evidence: evid, Knowledge: kb,
		Ready: o.ready, Gatherer: reg, Registerer: reg,
	}, o.tuneWS)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	e.srv, e.h = srv, srv.Handler()
	return e
}

// call is one request through the full handler. hdr holds header
// name/value pairs; "RemoteAddr" sets the connection address instead.
func (e *env) call(method, path, token, body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json") // the extension always sends it
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "RemoteAddr" {
			req.RemoteAddr = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// register signs a new user up and returns their tokens.
func (e *env) register(username string) tokenResponse {
	e.t.Helper()
	rec := e.call("POST", "/api/v1/auth/register", "",
		fmt.Sprintf(`{"username":%q,"password":%q,"email":%q,"display_name":null}`, username, testPassword, username+"@example.com"))
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", username, rec.Code, rec.Body)
	}
	return decode[tokenResponse](e.t, rec)
}

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

// wantStatus fails unless rec has the status.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
}

// wantError checks the envelope of contract §7: status, a string detail, a
// code that matches X-Error-Code, and no "session" wording in a 401.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code string) errorBody {
	t.Helper()
	wantStatus(t, rec, status)
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	detail, ok := raw["detail"].(string)
	if !ok || detail == "" {
		t.Fatalf("detail must be a non-empty string, body %s", rec.Body)
	}
	if raw["code"] != code || rec.Header().Get("X-Error-Code") != code {
		t.Fatalf("code %v / X-Error-Code %q, want %s", raw["code"], rec.Header().Get("X-Error-Code"), code)
	}
	if status == http.StatusUnauthorized && strings.Contains(strings.ToLower(detail), "session") {
		t.Fatalf("a 401 must not mention sessions: %q", detail)
	}
	return errorBody{Detail: detail, Code: code}
}

// wantRetryAfter checks that Retry-After is a whole number of seconds.
func wantRetryAfter(t *testing.T, rec *httptest.ResponseRecorder) int {
	t.Helper()
	v := rec.Header().Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("Retry-After %q is not a positive integer", v)
	}
	return n
}

// accessLogs are the observed "http request" entries.
func (e *env) accessLogs() []observer.LoggedEntry {
	return e.logs.FilterMessage("http request").All()
}
