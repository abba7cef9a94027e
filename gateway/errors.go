package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/session"
	"github.com/faultmaven/faultmaven/gateway/ws"
)

// Error is everything a client is told about a failed request: a stable
// SCREAMING_CASE code (sent as "code" and in the X-Error-Code header) and a
// human sentence (sent as "detail"). The HTTP status follows from the code
// through HTTPStatus, so a handler never picks a status by hand.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "gateway: " + e.Code + ": " + e.Message }

// Client-visible error codes.
const (
	CodeMalformedJSON      = "MALFORMED_JSON"
	CodeValidation         = "VALIDATION_ERROR"
	CodeNotAuthenticated   = "NOT_AUTHENTICATED"
	CodeInvalidToken       = "INVALID_TOKEN"
	CodeInvalidCredentials = "INVALID_CREDENTIALS"
	CodeRegistrationClosed = "REGISTRATION_CLOSED"
	CodeNotFound           = "NOT_FOUND"
	CodeCaseNotFound       = "CASE_NOT_FOUND"
	CodeFileNotFound       = "FILE_NOT_FOUND"
	CodeSessionNotFound    = "SESSION_NOT_FOUND"
	CodeUserNotFound       = "USER_NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeUserExists         = "USER_EXISTS"
	CodeInvalidTransition  = "INVALID_TRANSITION"
	CodeTooLarge           = "PAYLOAD_TOO_LARGE"
	CodeRateLimited        = "RATE_LIMITED"
	CodeClientClosed       = "CLIENT_CLOSED_REQUEST"
	CodeInternal           = "INTERNAL_ERROR"
	CodeCaseDegraded       = "CASE_DEGRADED"
	CodeCaseFailed         = "CASE_FAILED"
	CodeUnavailable        = "SERVICE_UNAVAILABLE"
	CodeNotReady           = "NOT_READY"
	CodeTimeout            = "TIMEOUT"
	CodeTurnFailed         = "TURN_FAILED"
	CodeMalformedForm      = "MALFORMED_FORM"
	CodeUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"
	CodeOriginRefused      = "ORIGIN_NOT_ALLOWED"
	CodeBadHandshake       = "BAD_HANDSHAKE"
	CodeDocumentNotFound   = "DOCUMENT_NOT_FOUND"
	CodeForbidden          = "FORBIDDEN"
)

// statusClientClosed is nginx's convention for "the client went away before
// the answer"; nobody reads it, but the access log should not call it a 500.
const statusClientClosed = 499

// statusByCode is the one table from error code to HTTP status.
var statusByCode = map[string]int{
	CodeMalformedJSON:      http.StatusBadRequest,
	CodeValidation:         http.StatusUnprocessableEntity,
	CodeNotAuthenticated:   http.StatusUnauthorized,
	CodeInvalidToken:       http.StatusUnauthorized,
	CodeInvalidCredentials: http.StatusUnauthorized,
	CodeRegistrationClosed: http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeCaseNotFound:       http.StatusNotFound,
	CodeFileNotFound:       http.StatusNotFound,
	CodeSessionNotFound:    http.StatusNotFound,
	CodeUserNotFound:       http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeUserExists:         http.StatusConflict,
	CodeInvalidTransition:  http.StatusConflict,
	CodeTooLarge:           http.StatusRequestEntityTooLarge,
	CodeRateLimited:        http.StatusTooManyRequests,
	CodeClientClosed:       statusClientClosed,
	CodeInternal:           http.StatusInternalServerError,
	CodeCaseDegraded:       http.StatusServiceUnavailable,
	CodeCaseFailed:         http.StatusServiceUnavailable,
	CodeUnavailable:        http.StatusServiceUnavailable,
	CodeNotReady:           http.StatusServiceUnavailable,
	CodeTimeout:            http.StatusGatewayTimeout,
	CodeTurnFailed:         http.StatusBadGateway,
	CodeMalformedForm:      http.StatusBadRequest,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeOriginRefused:      http.StatusForbidden,
	CodeBadHandshake:       http.StatusBadRequest,
	CodeDocumentNotFound:   http.StatusNotFound,
	CodeForbidden:          http.StatusForbidden,
}

// wsCodeByCode is the same table for WebSocket error frames, whose codes
// are lower snake case (docs/protocol.md). A case the caller may not see is
// "not_found", like one that does not exist.
var wsCodeByCode = map[string]string{
	CodeMalformedJSON:     ws.CodeMalformed,
	CodeMalformedForm:     ws.CodeMalformed,
	CodeValidation:        ws.CodeInvalid,
	CodeNotAuthenticated:  ws.CodeUnauthorized,
	CodeInvalidToken:      ws.CodeUnauthorized,
	CodeNotFound:          ws.CodeNotFound,
	CodeCaseNotFound:      ws.CodeNotFound,
	CodeFileNotFound:      ws.CodeNotFound,
	CodeInvalidTransition: "invalid_transition",
	CodeTooLarge:          "too_large",
	CodeRateLimited:       ws.CodeRateLimited,
	CodeCaseDegraded:      "case_degraded",
	CodeCaseFailed:        "case_failed",
	CodeUnavailable:       "unavailable",
	CodeTimeout:           "timeout",
	CodeClientClosed:      "cancelled",
	CodeInternal:          ws.CodeInternal,
}

// WSCode is the error-frame code for an error code: the table above, else
// the code in lower case; codes outside the HTTP table are "internal".
func WSCode(code string) string {
	if c, ok := wsCodeByCode[code]; ok {
		return c
	}
	if _, ok := statusByCode[code]; ok {
		return strings.ToLower(code)
	}
	return ws.CodeInternal
}

// HTTPStatus is the status sent with an error code; unknown codes are 500.
func HTTPStatus(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Errors the gateway itself raises.
var (
	errNotAuthenticated = &Error{CodeNotAuthenticated, "Not authenticated"}
	errInvalidToken     = &Error{CodeInvalidToken, "Invalid or expired token"}
	errTooLarge         = &Error{CodeTooLarge, "Request body too large"}
	errRateLimited      = &Error{CodeRateLimited, "Too many requests, retry later"}
	errRouteNotFound    = &Error{CodeNotFound, "Not found"}
	errMethodNotAllowed = &Error{CodeMethodNotAllowed, "Method not allowed"}
	errCaseNotFound     = &Error{CodeCaseNotFound, "Case not found"}
	errFileNotFound     = &Error{CodeFileNotFound, "File not found"}
	errInternal         = &Error{CodeInternal, "internal error"}
)

// Refusals of a WebSocket upgrade (package ws's errors).
var (
	errOriginRefused = &Error{CodeOriginRefused, "This Origin may not open a WebSocket to this server; add it to the allowed origins"}
	errBadHandshake  = &Error{CodeBadHandshake, "This endpoint speaks WebSocket: send a WebSocket upgrade request"}
	errTooManyConns  = &Error{CodeRateLimited, "Too many open WebSocket connections for this user"}
	errShuttingDown  = &Error{CodeUnavailable, "The server is shutting down"}
)

// validation returns a 422 error with a reason fit to show the user.
func validation(msg string) *Error { return &Error{CodeValidation, msg} }

// maxReason bounds how much of a service's reason text reaches a client.
const maxReason = 300

// ClientError maps any error to what a client may see. internal reports
// that err is unexpected: its text is hidden behind "internal error" and
// the caller must log it.
func ClientError(err error) (e Error, internal bool) {
	var ge *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ge):
		return *ge, false
	case errors.As(err, &tooBig):
		return *errTooLarge, false
	case errors.Is(err, actors.ErrNotFound):
		return *errCaseNotFound, false
	case errors.Is(err, evidence.ErrNotFound):
		return *errFileNotFound, false
	case errors.Is(err, evidence.ErrTooLarge):
		return Error{CodeTooLarge, fileTooLarge(err)}, false
	case errors.Is(err, evidence.ErrEmpty):
		return Error{CodeValidation, "The file is empty (0 bytes); nothing was stored"}, false
	case errors.Is(err, evidence.ErrInvalidInput):
		return Error{CodeValidation, reason(err, evidence.ErrInvalidInput, "Invalid file")}, false
	case errors.Is(err, ws.ErrAttachmentNotFound):
		return Error{CodeFileNotFound, reason(err, ws.ErrAttachmentNotFound, "File not found")}, false
	case errors.Is(err, ws.ErrOriginRefused):
		return *errOriginRefused, false
	case errors.Is(err, ws.ErrBadHandshake):
		return *errBadHandshake, false
	case errors.Is(err, ws.ErrTooManyConns):
		return *errTooManyConns, false
	case errors.Is(err, ws.ErrShuttingDown):
		return *errShuttingDown, false
	case errors.Is(err, embed.ErrNotFound):
		return Error{CodeDocumentNotFound, "Document not found"}, false
	case errors.Is(err, embed.ErrForbidden):
		return Error{CodeForbidden, reason(err, embed.ErrForbidden, "Only an admin may do that")}, false
	case errors.Is(err, embed.ErrUnsupported):
		return Error{CodeUnsupportedMedia, reason(err, embed.ErrUnsupported, "Unsupported document format")}, false
	case errors.Is(err, embed.ErrTooLarge):
		return Error{CodeTooLarge, reason(err, embed.ErrTooLarge, "The document is too large")}, false
	case errors.Is(err, embed.ErrEmpty):
		return Error{CodeValidation, "The document is empty; nothing was stored"}, false
	case errors.Is(err, embed.ErrInvalidInput):
		return Error{CodeValidation, reason(err, embed.ErrInvalidInput, "Invalid document")}, false
	case errors.Is(err, auth.ErrInvalidCredentials):
		return Error{CodeInvalidCredentials, "Invalid username or password"}, false
	case errors.Is(err, auth.ErrInvalidToken):
		return *errInvalidToken, false
	case errors.Is(err, auth.ErrUserExists):
		return Error{CodeUserExists, "User already exists"}, false
	case errors.Is(err, auth.ErrRegistrationClosed):
		return Error{CodeRegistrationClosed, "Registration is disabled on this server"}, false
	case errors.Is(err, auth.ErrUserNotFound):
		return Error{CodeUserNotFound, "User not found"}, false
	case errors.Is(err, session.ErrNotFound):
		return Error{CodeSessionNotFound, "Session not found"}, false
	case errors.Is(err, auth.ErrInvalidInput):
		return Error{CodeValidation, reason(err, auth.ErrInvalidInput, "Invalid input")}, false
	case errors.Is(err, session.ErrInvalidInput):
		return Error{CodeValidation, reason(err, session.ErrInvalidInput, "Invalid input")}, false
	case errors.Is(err, actors.ErrInvalidInput):
		return Error{CodeValidation, reason(err, actors.ErrInvalidInput, "Invalid input")}, false
	case errors.Is(err, actors.ErrInvalidTransition):
		return Error{CodeInvalidTransition, reason(err, actors.ErrInvalidTransition, "Status transition not allowed")}, false
	case errors.Is(err, actors.ErrDegraded):
		return Error{CodeCaseDegraded, "This case failed repeatedly and is read-only until an operator repairs it"}, false
	case errors.Is(err, actors.ErrCaseFailed):
		return Error{CodeCaseFailed, "The case failed while handling the request and was restarted; try again"}, false
	case errors.Is(err, actors.ErrTimeout):
		return Error{CodeTimeout, "The case did not answer in time"}, false
	case errors.Is(err, actors.ErrStopped):
		return Error{CodeUnavailable, "The server is shutting down"}, false
	case errors.Is(err, context.DeadlineExceeded):
		return Error{CodeTimeout, "The request timed out"}, false
	case errors.Is(err, context.Canceled):
		return Error{CodeClientClosed, "Client closed the request"}, false
	}
	return *errInternal, true
}

// reason extracts the human part of a wrapped sentinel: for
// fmt.Errorf("%w: title must be 1-200 characters", ErrInvalidInput) it is
// the text after "actors: invalid input: ".
func reason(err, sentinel error, fallback string) string {
	msg := err.Error()
	prefix := sentinel.Error() + ": "
	i := strings.Index(msg, prefix)
	if i < 0 {
		return fallback
	}
	r := strings.TrimSpace(msg[i+len(prefix):])
	if r == "" {
		return fallback
	}
	if len(r) > maxReason {
		r = strings.ToValidUTF8(r[:maxReason], "") + "…"
	}
	return r
}

// fileTooLarge keeps the limit the evidence store names ("evidence: file
// is larger than the 50 MB limit").
func fileTooLarge(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "file is larger than"); i >= 0 {
		return "The " + msg[i:]
	}
	return "The file is too large"
}

// errorBody is the envelope of contract §7: detail is always a string.
type errorBody struct {
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// WriteError is the one way a failed request is answered: it maps err
// through ClientError, logs unexpected errors with the request id (never
// showing their text), sets X-Error-Code and the headers a code calls for,
// and writes the envelope.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e, internal := ClientError(err)
	status := HTTPStatus(e.Code)
	info := infoFrom(r.Context())
	switch {
	case internal:
		info.logger().Error("request failed", zap.String("request_id", info.id),
			zap.String("route", routePattern(r)), zap.Error(err))
	case status >= 500:
		info.logger().Warn("request not served", zap.String("request_id", info.id),
			zap.String("route", routePattern(r)), zap.String("code", e.Code), zap.Error(err))
	}
	h := w.Header()
	switch e.Code {
	case CodeCaseFailed:
		h.Set("Retry-After", "1")
	case CodeRateLimited:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "60")
		}
	case CodeNotAuthenticated, CodeInvalidToken:
		h.Set("WWW-Authenticate", `Bearer realm="faultmaven"`)
	}
	writeEnvelope(w, e)
}

// writeEnvelope writes e without logging; for paths that logged already.
func writeEnvelope(w http.ResponseWriter, e Error) {
	w.Header().Set("X-Error-Code", e.Code)
	writeJSON(w, HTTPStatus(e.Code), errorBody{Detail: e.Message, Code: e.Code})
}
