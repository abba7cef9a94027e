package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func TestRequestIDEchoedOrGenerated(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.Router().Get("/test/reqid", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, RequestIDFrom(r.Context()))
	})
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tc := range []struct {
		name, in string
		echoed   bool
	}{
		{"sane id echoed", "req-123_ABC", true},
		{"64 chars echoed", strings.Repeat("a", 64), true},
		{"missing", "", false},
		{"65 chars replaced", strings.Repeat("a", 65), false},
		{"space replaced", "a b", false},
		{"log forging replaced", "abc\"} {\"user_id\":\"admin", false},
		{"unicode replaced", "идентификатор", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.call("GET", "/test/reqid", "", "", "X-Request-Id", tc.in)
			got := rec.Header().Get("X-Request-Id")
			if rec.Body.String() != got {
				t.Fatalf("RequestIDFrom %q differs from header %q", rec.Body, got)
			}
			if tc.echoed && got != tc.in {
				t.Fatalf("id %q not echoed, got %q", tc.in, got)
			}
			if !tc.echoed && !generated.MatchString(got) {
				t.Fatalf("generated id %q is not 32 hex digits", got)
			}
		})
	}
	a := e.call("GET", "/healthz", "", "").Header().Get("X-Request-Id")
	b := e.call("GET", "/healthz", "", "").Header().Get("X-Request-Id")
	if a == b {
		t.Fatalf("two requests got the same generated id %q", a)
	}
	// Error envelopes carry it too, and the access log names it.
	rec := e.call("GET", "/nope", "", "", "X-Request-Id", "trace-me")
	wantError(t, rec, http.StatusNotFound, CodeNotFound)
	if rec.Header().Get("X-Request-Id") != "trace-me" {
		t.Fatalf("404 lacks the request id")
	}
	found := false
	for _, le := range e.accessLogs() {
		if le.ContextMap()["request_id"] == "trace-me" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access log line with request_id trace-me")
	}
}

func TestPanicBecomes500AndServerSurvives(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.Router().Get("/test/panic", func(http.ResponseWriter, *http.Request) {
		panic("boom: secret detail")
	})
	e.srv.Router().Get("/test/panic-late", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "partial")
		panic("late")
	})
	e.srv.Router().Get("/test/abort", func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	})

	rec := e.call("GET", "/test/panic", "", "", "X-Request-Id", "panic-1")
	body := wantError(t, rec, http.StatusInternalServerError, CodeInternal)
	if body.Detail != "internal error" || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("panic leaked to the client: %s", rec.Body)
	}
	logged := e.logs.FilterMessage("panic serving request").All()
	if len(logged) != 1 {
		t.Fatalf("%d panic log entries, want 1", len(logged))
	}
	ctx := logged[0].ContextMap()
	if ctx["request_id"] != "panic-1" || !strings.Contains(fmt.Sprint(ctx["stack"]), "gateway") {
		t.Fatalf("panic log lacks request_id or stack: %v", ctx)
	}
	var m dto.Metric
	if err := e.srv.metrics.panics.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Fatalf("panics_total = %v, want 1", got)
	}
	// The access log saw the 500.
	var status any
	for _, le := range e.accessLogs() {
		if le.ContextMap()["request_id"] == "panic-1" {
			status = le.ContextMap()["status"]
		}
	}
	if status != int64(500) {
		t.Fatalf("access log status %v, want 500", status)
	}

	// A panic after the response started cannot be answered again.
	rec = e.call("GET", "/test/panic-late", "", "")
	if rec.Code != http.StatusAccepted || rec.Body.String() != "partial" {
		t.Fatalf("late panic rewrote the response: %d %q", rec.Code, rec.Body)
	}

	// net/http's abort signal passes through untouched.
	func() {
		defer func() {
			if r := recover(); r != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler re-raised", r)
			}
		}()
		e.call("GET", "/test/abort", "", "")
	}()

	// Still serving, over a real connection too.
	wantStatus(t, e.call("GET", "/healthz", "", ""), http.StatusOK)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	for _, path := range []string{"/test/panic", "/healthz"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatalf("GET %s after a panic: %v", path, err)
		}
		_ = resp.Body.Close()
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, Config{CORSOrigins: []string{"chrome-extension://*", "https://FM.example.com/"}})
	const ext = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
	preflight := func(origin, reqHeaders string) *httptest.ResponseRecorder {
		return e.call("OPTIONS", "/api/v1/cases", "", "",
			"Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", reqHeaders)
	}

	for _, origin := range []string{ext, "https://fm.example.com"} {
		rec := preflight(origin, "authorization,content-type,idempotency-key,x-session-id,x-request-id")
		h := rec.Header()
		if rec.Code/100 != 2 || h.Get("Access-Control-Allow-Origin") != origin ||
			h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("preflight from %s: %d %v", origin, rec.Code, h)
		}
		allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"authorization", "content-type", "idempotency-key", "x-session-id", "x-request-id"} {
			if !strings.Contains(allowed, want) {
				t.Fatalf("preflight does not allow %s: %q", want, allowed)
			}
		}
	}

	for _, origin := range []string{"https://evil.example", "null", "chrome-extension://", "https://fm.example.com.evil.io"} {
		rec := preflight(origin, "authorization")
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
			t.Fatalf("disallowed origin %q got ACAO %q", origin, got)
		}
		if got := rec.Header().Get("Access-Control-Allow-Credentials"); got != "" {
			t.Fatalf("disallowed origin %q got credentials %q", origin, got)
		}
	}

	// Actual responses, errors included, are readable by an allowed origin.
	rec := e.call("GET", "/api/v1/cases", "", "", "Origin", ext)
	wantError(t, rec, http.StatusUnauthorized, CodeNotAuthenticated)
	h := rec.Header()
	if h.Get("Access-Control-Allow-Origin") != ext || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("401 to an allowed origin lacks CORS headers: %v", h)
	}
	exposed := strings.ToLower(h.Get("Access-Control-Expose-Headers"))
	for _, want := range []string{"location", "retry-after", "x-error-code", "x-title-source", "x-request-id"} {
		if !strings.Contains(exposed, want) {
			t.Fatalf("%s not exposed: %q", want, exposed)
		}
	}
	if got := e.call("GET", "/healthz", "", "", "Origin", "https://evil.example").Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("actual request from a disallowed origin got ACAO %q", got)
	}

	// No origins configured: nobody, not everybody.
	closed := newEnv(t, Config{})
	rec = closed.call("OPTIONS", "/api/v1/cases", "", "", "Origin", ext, "Access-Control-Request-Method", "GET")
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("empty allow-list allowed %q", got)
	}
}

func TestOriginPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, origin string
		match           bool
	}{
		{"chrome-extension://*", "chrome-extension://abcdefghijklmnop", true},
		{"chrome-extension://*", "chrome-extension://", false},
		{"chrome-extension://*", "moz-extension://abc", false},
		{"https://*.example.com", "https://a.b.example.com", true},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://evil.com:1.example.com", false},
		{"https://*.example.com", "https://evil.com/.example.com", false},
		{"http://localhost:*", "http://localhost:8090", true},
		{"https://fm.example.com", "https://fm.example.com", true},
		{"https://fm.example.com", "https://fm.example.com:444", false},
	} {
		p, err := parseOrigin(tc.pattern)
		if err != nil {
			t.Fatalf("parseOrigin(%q): %v", tc.pattern, err)
		}
		if got := p.match(tc.origin); got != tc.match {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.origin, got, tc.match)
		}
	}
	for _, bad := range []string{"*", "localhost", "https://a.com/path", "http*://a.com", "https://*.*.com", "://x"} {
		cfg := Config{CORSOrigins: []string{bad}}
		cfg.EnsureDefaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
}

func TestRateLimitPerIP(t *testing.T) {
	e := newEnv(t, Config{RateLimitIP: 3})
	for i := 0; i < 3; i++ {
		wantStatus(t, e.call("GET", "/healthz", "", "", "RemoteAddr", "198.51.100.7:4000"), http.StatusOK)
	}
	rec := e.call("GET", "/healthz", "", "", "RemoteAddr", "198.51.100.7:4001")
	wantError(t, rec, http.StatusTooManyRequests, CodeRateLimited)
	if n := wantRetryAfter(t, rec); n > 60 {
		t.Fatalf("Retry-After %d exceeds the window", n)
	}
	// Another client is unaffected.
	wantStatus(t, e.call("GET", "/healthz", "", "", "RemoteAddr", "198.51.100.8:4000"), http.StatusOK)
}

func TestRateLimitAuthRoutes(t *testing.T) {
	e := newEnv(t, Config{RateLimitAuth: 2})
	body := `{"username":"nobody","password":"wrong password"}`
	for i := 0; i < 2; i++ {
		wantError(t, e.call("POST", "/api/v1/auth/login", "", body), http.StatusUnauthorized, CodeInvalidCredentials)
	}
	// The budget is shared by login, register and refresh.
	rec := e.call("POST", "/api/v1/auth/refresh", "", `{"refresh_token":"x"}`)
	wantError(t, rec, http.StatusTooManyRequests, CodeRateLimited)
	wantRetryAfter(t, rec)
	// Other routes from the same IP are not counted against it.
	wantStatus(t, e.call("GET", "/api/v1/auth/config", "", ""), http.StatusOK)
	wantError(t, e.call("POST", "/api/v1/auth/login", "", body, "RemoteAddr", "203.0.113.9:1"),
		http.StatusUnauthorized, CodeInvalidCredentials)
}

func TestRateLimitPerUser(t *testing.T) {
	e := newEnv(t, Config{RateLimitUser: 2})
	alice, bob := e.register("alice"), e.register("bob")
	for i := 0; i < 2; i++ {
		wantStatus(t, e.call("GET", "/api/v1/auth/me", alice.AccessToken, ""), http.StatusOK)
	}
	rec := e.call("GET", "/api/v1/cases", alice.AccessToken, "")
	wantError(t, rec, http.StatusTooManyRequests, CodeRateLimited)
	wantRetryAfter(t, rec)
	wantStatus(t, e.call("GET", "/api/v1/auth/me", bob.AccessToken, ""), http.StatusOK)
}

func TestClientIPFromTrustedProxy(t *testing.T) {
	e := newEnv(t, Config{TrustedProxies: 1, RateLimitIP: 1})
	wantStatus(t, e.call("GET", "/healthz", "", "", "RemoteAddr", "10.0.0.1:5000", "X-Forwarded-For", "203.0.113.5"), http.StatusOK)
	// Same proxy, another client: its own budget.
	wantStatus(t, e.call("GET", "/healthz", "", "", "RemoteAddr", "10.0.0.1:5000", "X-Forwarded-For", "203.0.113.6"), http.StatusOK)
	wantError(t, e.call("GET", "/healthz", "", "", "RemoteAddr", "10.0.0.1:5000", "X-Forwarded-For", "203.0.113.5"),
		http.StatusTooManyRequests, CodeRateLimited)
	logs := e.accessLogs()
	if got := logs[0].ContextMap()["client_ip"]; got != "203.0.113.5" {
		t.Fatalf("client_ip %v, want the forwarded address", got)
	}
}

// chunked hides a body's length, so only reading can find it too large.
type chunked struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, Config{MaxBodyBytes: 128})
	big := `{"username":"someone","password":"` + strings.Repeat("x", 200) + `"}`

	wantError(t, e.call("POST", "/api/v1/auth/login", "", big), http.StatusRequestEntityTooLarge, CodeTooLarge)

	req := httptest.NewRequest("POST", "/api/v1/auth/login", chunked{strings.NewReader(big)})
	req.Header.Set("Content-Type", "application/json")
	if req.ContentLength != -1 {
		t.Fatalf("test needs an undeclared length, got %d", req.ContentLength)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)

	// A multipart Content-Type does not get a JSON route around the cap.
	rec = e.call("POST", "/api/v1/auth/login", "", big, "Content-Type", "multipart/form-data; boundary=x")
	wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)

	// The router-wide cap holds for handlers that read the body themselves.
	reached := false
	e.srv.Router().Post("/test/raw", func(w http.ResponseWriter, r *http.Request) {
		reached = true
		if _, err := io.ReadAll(r.Body); err != nil {
			WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	wantError(t, e.call("POST", "/test/raw", "", big), http.StatusRequestEntityTooLarge, CodeTooLarge)
	if reached {
		t.Fatalf("a declared oversized body reached the handler")
	}
	req = httptest.NewRequest("POST", "/test/raw", chunked{strings.NewReader(big)})
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)
	wantStatus(t, e.call("POST", "/test/raw", "", "small"), http.StatusNoContent)

	// Within the cap the request reaches the service.
	wantError(t, e.call("POST", "/api/v1/auth/login", "", `{"username":"someone","password":"nope nope"}`),
		http.StatusUnauthorized, CodeInvalidCredentials)
}

func TestAccessLogFieldsAndNoSecrets(t *testing.T) {
	e := newEnv(t, Config{})
	tok := e.register("carol")
	const querySecret = "qs-secret-value"
	rec := e.call("GET", "/api/v1/auth/me?token="+querySecret, tok.AccessToken, "", "X-Session-Id", "sess-advisory")
	wantStatus(t, rec, http.StatusOK)
	rec = e.call("POST", "/api/v1/auth/login", "", `{"username":"carol","password":"`+testPassword+`"}`)
	wantStatus(t, rec, http.StatusOK)
	login := decode[tokenResponse](t, rec)

	var me map[string]any
	for _, le := range e.accessLogs() {
		if le.ContextMap()["route"] == "/api/v1/auth/me" {
			me = le.ContextMap()
		}
	}
	if me == nil {
		t.Fatalf("no access log line for /api/v1/auth/me")
	}
	for _, k := range []string{"method", "route", "status", "bytes", "duration", "request_id", "user_id", "client_ip"} {
		if _, ok := me[k]; !ok {
			t.Fatalf("access log lacks %s: %v", k, me)
		}
	}
	if me["user_id"] == "" || me["status"] != int64(200) || me["method"] != "GET" {
		t.Fatalf("access log fields wrong: %v", me)
	}
	secrets := []string{tok.AccessToken, tok.RefreshToken, login.AccessToken, login.RefreshToken, testPassword, querySecret, "Bearer"}
	for _, le := range e.logs.All() {
		line := le.Message + fmt.Sprint(le.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Fatalf("log line contains a secret %q: %s", s, line)
			}
		}
	}
}

func TestAuthMiddleware(t *testing.T) {
	e := newEnv(t, Config{})
	tok := e.register("dave")
	for _, tc := range []struct {
		name, header, code string
	}{
		{"missing", "", CodeNotAuthenticated},
		{"basic scheme", "Basic ZGF2ZTpwdw==", CodeInvalidToken},
		{"empty bearer", "Bearer ", CodeInvalidToken},
		{"garbage", "Bearer not-a-jwt", CodeInvalidToken},
		{"tampered", "Bearer " + tok.AccessToken + "x", CodeInvalidToken},
		{"refresh token as access", "Bearer " + tok.RefreshToken, CodeInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.call("GET", "/api/v1/cases", "", "", "Authorization", tc.header)
			wantError(t, rec, http.StatusUnauthorized, tc.code)
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge")
			}
		})
	}
	// The scheme is case-insensitive, and X-Session-Id never causes a 401.
	rec := e.call("GET", "/api/v1/cases", "", "", "Authorization", "bearer "+tok.AccessToken, "X-Session-Id", "no-such-session")
	wantStatus(t, rec, http.StatusOK)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t, Config{})
	wantError(t, e.call("GET", "/api/v1/nothing", "", ""), http.StatusNotFound, CodeNotFound)
	wantError(t, e.call("DELETE", "/healthz", "", ""), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, Config{})
	wantStatus(t, e.call("GET", "/healthz", "", ""), http.StatusOK)
	wantError(t, e.call("GET", "/api/v1/cases/case_0123/ui", "", ""), http.StatusUnauthorized, CodeNotAuthenticated)
	rec := e.call("GET", "/metrics", "", "")
	wantStatus(t, rec, http.StatusOK)
	text := rec.Body.String()
	for _, want := range []string{
		`faultmaven_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1`,
		`route="/api/v1/cases/{case_id}/ui",status="401"`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "case_0123") {
		t.Fatalf("a raw path reached a metric label")
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, Config{})
	good := Deps{Auth: e.auth, Sessions: e.sess, Cases: e.cases, Evidence: e.evid}
	for _, tc := range []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"wildcard origin", Config{CORSOrigins: []string{"*"}}, good},
		{"negative limit", Config{RateLimitUser: -1}, good},
		{"negative body cap", Config{MaxBodyBytes: -5}, good},
		{"negative proxies", Config{TrustedProxies: -1}, good},
		{"no auth", Config{}, Deps{Sessions: e.sess, Cases: e.cases, Evidence: e.evid}},
		{"no sessions", Config{}, Deps{Auth: e.auth, Cases: e.cases, Evidence: e.evid}},
		{"no cases", Config{}, Deps{Auth: e.auth, Sessions: e.sess, Evidence: e.evid}},
		{"no evidence", Config{}, Deps{Auth: e.auth, Sessions: e.sess, Cases: e.cases}},
		{"gatherer without registerer", Config{}, Deps{Auth: e.auth, Sessions: e.sess, Cases: e.cases, Evidence: e.evid, Gatherer: e.reg}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.deps); err == nil {
				t.Fatalf("New accepted it")
			}
		})
	}
	// Two servers may share one registry.
	for i := 0; i < 2; i++ {
		d := good
		d.Gatherer, d.Registerer = e.reg, e.reg
		if _, err := New(Config{}, d); err != nil {
			t.Fatalf("second server on a shared registry: %v", err)
		}
	}
}
