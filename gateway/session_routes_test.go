package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"sort"
	"testing"
)

func TestSessions(t *testing.T) {
	e := newEnv(t, Config{})
	const clientID = "6f1e0c2a-7d1b-4c7e-9a51-3c1f0e9b2d44"
	body := `{"client_id":"` + clientID + `","session_type":"troubleshooting","timeout_minutes":180}`

	// Before login: anonymous session.
	rec := e.call("POST", "/api/v1/sessions", "", body)
	wantStatus(t, rec, http.StatusCreated)
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"client_id", "created_at", "expires_at", "last_activity", "session_id", "session_resumed", "session_type", "status", "user_id"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("session fields %v, want %v", keys, want)
	}
	anon := decode[sessionResponse](t, rec)
	if anon.SessionID == "" || anon.UserID != "" || anon.SessionResumed || anon.Status != "active" || anon.ClientID != clientID {
		t.Fatalf("anonymous session: %+v", anon)
	}

	// A present but bad token is refused, not silently anonymous.
	wantError(t, e.call("POST", "/api/v1/sessions", "bad-token", body), http.StatusUnauthorized, CodeInvalidToken)

	// Logged in: a session of the user, resumed by client_id.
	tok := e.register("grace")
	rec = e.call("POST", "/api/v1/sessions", tok.AccessToken, body)
	wantStatus(t, rec, http.StatusCreated)
	first := decode[sessionResponse](t, rec)
	if first.UserID != tok.User.UserID || first.SessionResumed {
		t.Fatalf("user session: %+v", first)
	}
	rec = e.call("POST", "/api/v1/sessions", tok.AccessToken, body)
	wantStatus(t, rec, http.StatusCreated)
	again := decode[sessionResponse](t, rec)
	if !again.SessionResumed || again.SessionID != first.SessionID {
		t.Fatalf("not resumed: %+v vs %+v", again, first)
	}
	// A bodiless create still gets a session.
	wantStatus(t, e.call("POST", "/api/v1/sessions", tok.AccessToken, ""), http.StatusCreated)
	wantError(t, e.call("POST", "/api/v1/sessions", tok.AccessToken, `{"timeout_minutes":"long"}`),
		http.StatusUnprocessableEntity, CodeValidation)

	// Heartbeat: bodiless, 200 {}.
	rec = e.call("POST", "/api/v1/sessions/"+first.SessionID+"/heartbeat", tok.AccessToken, "", "X-Session-Id", first.SessionID)
	wantStatus(t, rec, http.StatusOK)
	if got := decode[map[string]any](t, rec); len(got) != 0 {
		t.Fatalf("heartbeat body %v, want {}", got)
	}
	// The anonymous session created before login is adopted, not refused.
	wantStatus(t, e.call("POST", "/api/v1/sessions/"+anon.SessionID+"/heartbeat", tok.AccessToken, ""), http.StatusOK)
	wantError(t, e.call("POST", "/api/v1/sessions/sess_nope/heartbeat", tok.AccessToken, ""),
		http.StatusNotFound, CodeSessionNotFound)
	wantError(t, e.call("POST", "/api/v1/sessions/"+first.SessionID+"/heartbeat", "", ""),
		http.StatusUnauthorized, CodeNotAuthenticated)
	// Another user's session is not found.
	other := e.register("heidi")
	wantError(t, e.call("POST", "/api/v1/sessions/"+first.SessionID+"/heartbeat", other.AccessToken, ""),
		http.StatusNotFound, CodeSessionNotFound)
}

func TestHealthProbesAndCapabilities(t *testing.T) {
	var notReady error
	e := newEnv(t, Config{Version: "1.2.3", DashboardURL: "http://localhost:3000"},
		func(o *envOption) { o.ready = func() error { return notReady } })

	rec := e.call("GET", "/v1/meta/capabilities", "", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	want := map[string]any{
		"deploymentMode": "self-hosted",
		"kbManagement":   "dashboard",
		"dashboardUrl":   "http://localhost:3000",
		"features": map[string]any{
			"extensionKB": false, "adminKB": false, "teamSharing": false, "caseHistory": true, "sso": false,
		},
		"limits": map[string]any{
			"maxFileBytes":      float64(10485760),
			"allowedExtensions": []any{".md", ".txt", ".log", ".json", ".csv"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("capabilities\n got %v\nwant %v", got, want)
	}

	if got := decode[map[string]any](t, e.call("GET", "/health", "", "")); got["status"] != "ok" || got["version"] != "1.2.3" {
		t.Fatalf("/health: %v", got)
	}
	if got := decode[map[string]any](t, e.call("GET", "/healthz", "", "")); !reflect.DeepEqual(got, map[string]any{"status": "ok"}) {
		t.Fatalf("/healthz: %v", got)
	}
	wantStatus(t, e.call("GET", "/readyz", "", ""), http.StatusOK)

	notReady = errors.New("case system is shutting down")
	body := wantError(t, e.call("GET", "/readyz", "", ""), http.StatusServiceUnavailable, CodeNotReady)
	if body.Detail != "not ready: case system is shutting down" {
		t.Fatalf("readyz reason: %q", body.Detail)
	}
	// Liveness does not follow readiness.
	wantStatus(t, e.call("GET", "/healthz", "", ""), http.StatusOK)
}
