package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/session"
	"github.com/faultmaven/faultmaven/gateway/ws"
)

func TestClientErrorTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("handle request: %w", err) }
	for _, tc := range []struct {
		err    error
		status int
		code   string
		detail string // "" means only "non-empty"
	}{
		{auth.ErrInvalidCredentials, 401, CodeInvalidCredentials, "Invalid username or password"},
		{wrap(auth.ErrInvalidToken), 401, CodeInvalidToken, "Invalid or expired token"},
		{fmt.Errorf("%w: refresh token reused; its session was revoked", auth.ErrInvalidToken), 401, CodeInvalidToken, "Invalid or expired token"},
		{auth.ErrUserExists, 409, CodeUserExists, "User already exists"},
		{auth.ErrRegistrationClosed, 403, CodeRegistrationClosed, ""},
		{auth.ErrUserNotFound, 404, CodeUserNotFound, ""},
		{fmt.Errorf("%w: username must be 3-50 characters", auth.ErrInvalidInput), 422, CodeValidation, "username must be 3-50 characters"},
		{wrap(fmt.Errorf("%w: client_id is too long", session.ErrInvalidInput)), 422, CodeValidation, "client_id is too long"},
		{fmt.Errorf("%w: title must be 1-200 characters", actors.ErrInvalidInput), 422, CodeValidation, "title must be 1-200 characters"},
		{actors.ErrInvalidInput, 422, CodeValidation, "Invalid input"},
		{wrap(actors.ErrNotFound), 404, CodeCaseNotFound, "Case not found"},
		{session.ErrNotFound, 404, CodeSessionNotFound, ""},
		{fmt.Errorf("%w: case is already closed; closed is a final state", actors.ErrInvalidTransition), 409, CodeInvalidTransition, "case is already closed; closed is a final state"},
		{actors.ErrDegraded, 503, CodeCaseDegraded, ""},
		{actors.ErrCaseFailed, 503, CodeCaseFailed, ""},
		{actors.ErrTimeout, 504, CodeTimeout, ""},
		{actors.ErrStopped, 503, CodeUnavailable, ""},
		{context.DeadlineExceeded, 504, CodeTimeout, ""},
		{wrap(context.Canceled), 499, CodeClientClosed, ""},
		{&http.MaxBytesError{Limit: 10}, 413, CodeTooLarge, ""},
		{validation("limit must be an integer from 1 to 100"), 422, CodeValidation, "limit must be an integer from 1 to 100"},
		{wrap(evidence.ErrNotFound), 404, CodeFileNotFound, "File not found"},
		{evidence.ErrTooLarge, 413, CodeTooLarge, "The file is too large"},
		{wrap(evidence.ErrEmpty), 422, CodeValidation, "The file is empty (0 bytes); nothing was stored"},
		{fmt.Errorf("%w: upload source \"x\" (want file_upload, …)", evidence.ErrInvalidInput), 422, CodeValidation, `upload source "x" (want file_upload, …)`},
		{ws.ErrOriginRefused, 403, CodeOriginRefused, "This Origin may not open a WebSocket to this server; add it to the allowed origins"},
		{ws.ErrBadHandshake, 400, CodeBadHandshake, "This endpoint speaks WebSocket: send a WebSocket upgrade request"},
		{ws.ErrTooManyConns, 429, CodeRateLimited, "Too many open WebSocket connections for this user"},
		{ws.ErrShuttingDown, 503, CodeUnavailable, "The server is shutting down"},
		{fmt.Errorf("%w: attachment f_1 is not a file uploaded to this case", ws.ErrAttachmentNotFound), 404, CodeFileNotFound, "attachment f_1 is not a file uploaded to this case"},
		{errors.New("pebble: disk on fire at /var/lib/x"), 500, CodeInternal, "internal error"},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			got, internal := ClientError(tc.err)
			if HTTPStatus(got.Code) != tc.status || got.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", HTTPStatus(got.Code), got.Code, tc.status, tc.code)
			}
			if tc.detail != "" && got.Message != tc.detail {
				t.Fatalf("detail %q, want %q", got.Message, tc.detail)
			}
			if got.Message == "" {
				t.Fatalf("empty detail")
			}
			if internal != (tc.code == CodeInternal) {
				t.Fatalf("internal = %v", internal)
			}
			if tc.status == 401 && strings.Contains(strings.ToLower(got.Message), "session") {
				t.Fatalf("a 401 mentions sessions: %q", got.Message)
			}
		})
	}
}

func TestFileNotFoundOverWebSocket(t *testing.T) {
	if got := WSCode(CodeFileNotFound); got != ws.CodeNotFound {
		t.Fatalf("FILE_NOT_FOUND is %q over the WebSocket, want %q", got, ws.CodeNotFound)
	}
}

func TestWSCodeTable(t *testing.T) {
	for code := range statusByCode {
		fc := WSCode(code)
		if fc == "" || fc != strings.ToLower(fc) || strings.ContainsAny(fc, " -") {
			t.Errorf("%s maps to %q, not a lower snake code", code, fc)
		}
		if fc == ws.CodeInternal && HTTPStatus(code) < 500 {
			t.Errorf("client error %s shows as internal on the WebSocket", code)
		}
	}
	if WSCode(CodeCaseNotFound) != ws.CodeNotFound || WSCode("NEVER_HEARD_OF") != ws.CodeInternal {
		t.Fatal("not_found / unknown codes")
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for code, status := range statusByCode {
		if status < 400 || status > 599 {
			t.Errorf("%s maps to %d", code, status)
		}
		if strings.ToUpper(code) != code || strings.ContainsAny(code, " -") {
			t.Errorf("%s is not SCREAMING_CASE", code)
		}
	}
	if HTTPStatus("NO_SUCH_CODE") != 500 {
		t.Fatalf("unknown codes must be 500")
	}
}

func TestWriteErrorHidesAndLogsInternalErrors(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	req := httptest.NewRequest("GET", "/x", nil)
	req = req.WithContext(context.WithValue(req.Context(), keyInfo, &requestInfo{id: "rid-7", log: zap.New(core)}))
	rec := httptest.NewRecorder()
	WriteError(rec, req, errors.New("pebble: secret path /data/x"))
	body := wantError(t, rec, 500, CodeInternal)
	if body.Detail != "internal error" || strings.Contains(rec.Body.String(), "pebble") {
		t.Fatalf("internal error leaked: %s", rec.Body)
	}
	entries := logs.FilterMessage("request failed").All()
	if len(entries) != 1 || entries[0].ContextMap()["request_id"] != "rid-7" ||
		!strings.Contains(fmt.Sprint(entries[0].ContextMap()["error"]), "pebble") {
		t.Fatalf("internal error not logged with its request id: %v", logs.All())
	}

	// Expected errors are not logged as failures and set their headers.
	rec = httptest.NewRecorder()
	WriteError(rec, req, fmt.Errorf("ask: %w", actors.ErrCaseFailed))
	wantError(t, rec, 503, CodeCaseFailed)
	if rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("a restarted case without Retry-After: 1")
	}
	rec = httptest.NewRecorder()
	WriteError(rec, req, errRateLimited)
	wantError(t, rec, 429, CodeRateLimited)
	wantRetryAfter(t, rec)
	if n := logs.FilterMessage("request failed").Len(); n != 1 {
		t.Fatalf("expected errors were logged as failures (%d)", n)
	}

	// Outside a Server (no request info) it still answers.
	rec = httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/", nil), auth.ErrInvalidToken)
	wantError(t, rec, 401, CodeInvalidToken)
}

func TestReasonIsBounded(t *testing.T) {
	long := fmt.Errorf("%w: %s", actors.ErrInvalidInput, strings.Repeat("é", 400))
	got, _ := ClientError(long)
	if len(got.Message) > maxReason+len("…") {
		t.Fatalf("reason is %d bytes", len(got.Message))
	}
	if !strings.HasSuffix(got.Message, "…") {
		t.Fatalf("truncated reason not marked: %q", got.Message[len(got.Message)-8:])
	}
}
