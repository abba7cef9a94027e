package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/gateway/ws"
)

// Request decoding. Each body type has one decoder that is a pure function
// of the bytes (the handler caps their number first), so it can be fuzzed.
// They follow the extension's habits (contract §0): unknown fields are
// ignored, explicit nulls mean "absent", and an empty body is an empty
// object, because the extension sends Content-Type: application/json on
// bodiless POSTs. Every error is an *Error fit for the envelope: 400 for
// bytes that are not JSON, 413 past the size cap, 422 for a well-formed
// body with bad values. Semantic checks that belong to a service (password
// rules, closure reasons, ...) stay in the service.

// Size caps on free text, in characters, checked before a service sees it.
const (
	maxTitleChars    = 200
	maxShortField    = 256   // usernames, emails, client ids, enum-like fields
	maxSecretBytes   = 4096  // passwords and refresh tokens
	maxReasonChars   = 2000  // status change reasons
	maxDescription   = 20000 // case descriptions
	maxPageLimit     = 100
	defaultPageLimit = 50
	maxOffset        = 1 << 30
)

// decodeJSON reads one JSON value from body into dst.
func decodeJSON(body io.Reader, dst any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty body
		}
		return jsonError(err)
	}
	// Only whitespace may follow the value.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return &Error{CodeMalformedJSON, "Malformed JSON: unexpected data after the request body"}
	}
	return nil
}

// jsonError turns a decoding failure into a client error.
func jsonError(err error) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return errTooLarge
	case errors.As(err, &syntax):
		return &Error{CodeMalformedJSON, fmt.Sprintf("Malformed JSON at byte %d", syntax.Offset)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{CodeMalformedJSON, "Malformed JSON: the body ends too early"}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return validation("The request body must be a JSON object")
		}
		return validation(fmt.Sprintf("%s must be %s", typ.Field, ws.KindName(typ.Type)))
	}
	return &Error{CodeMalformedJSON, "The request body could not be read as JSON"}
}

// checkText enforces a character cap and refuses control characters in
// single-line fields.
func checkText(field, v string, maxChars int) error {
	if !utf8.ValidString(v) {
		return validation(field + " must be valid UTF-8")
	}
	if utf8.RuneCountInString(v) > maxChars {
		return validation(fmt.Sprintf("%s must be at most %d characters", field, maxChars))
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return validation(field + " must not contain control characters")
		}
	}
	return nil
}

func checkSecret(field, v string) error {
	if len(v) > maxSecretBytes {
		return validation(fmt.Sprintf("%s must be at most %d bytes", field, maxSecretBytes))
	}
	return nil
}

// loginRequest is contract §2.1. The service checks the credentials.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func decodeLogin(body io.Reader) (loginRequest, error) {
	var req loginRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.Username = strings.TrimSpace(req.Username)
	if req.Username == "" {
		return req, validation("username is required")
	}
	if err := checkText("username", req.Username, maxShortField); err != nil {
		return req, err
	}
	return req, checkSecret("password", req.Password)
}

// registerRequest is contract §2.2.
type registerRequest struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
}

func decodeRegister(body io.Reader) (registerRequest, error) {
	var req registerRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.Username = strings.TrimSpace(req.Username)
	req.Email = strings.TrimSpace(req.Email)
	req.DisplayName = strings.TrimSpace(req.DisplayName)
	if err := checkText("username", req.Username, maxShortField); err != nil {
		return req, err
	}
	if err := checkText("email", req.Email, maxShortField); err != nil {
		return req, err
	}
	if err := checkText("display_name", req.DisplayName, maxShortField); err != nil {
		return req, err
	}
	return req, checkSecret("password", req.Password)
}

// refreshRequest is contract §2.3.
type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func decodeRefresh(body io.Reader) (refreshRequest, error) {
	var req refreshRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.RefreshToken = strings.TrimSpace(req.RefreshToken)
	if req.RefreshToken == "" {
		return req, validation("refresh_token is required")
	}
	return req, checkSecret("refresh_token", req.RefreshToken)
}

// sessionCreateRequest is contract §3.1; metadata is accepted and ignored.
type sessionCreateRequest struct {
	ClientID       string `json:"client_id"`
	SessionType    string `json:"session_type"`
	TimeoutMinutes int    `json:"timeout_minutes"`
}

func decodeSessionCreate(body io.Reader) (sessionCreateRequest, error) {
	var req sessionCreateRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.ClientID = strings.TrimSpace(req.ClientID)
	req.SessionType = strings.TrimSpace(req.SessionType)
	if err := checkText("client_id", req.ClientID, maxShortField); err != nil {
		return req, err
	}
	return req, checkText("session_type", req.SessionType, maxShortField)
}

// caseCreateRequest is contract §4.2. A null or blank title asks for the
// "Case-YYMMDD-N" placeholder; metadata is accepted and ignored.
type caseCreateRequest struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Priority    string `json:"priority"`
}

func decodeCaseCreate(body io.Reader) (caseCreateRequest, error) {
	var req caseCreateRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.Title = strings.TrimSpace(req.Title)
	req.Priority = strings.ToLower(strings.TrimSpace(req.Priority))
	if err := checkText("title", req.Title, maxTitleChars); err != nil {
		return req, err
	}
	if !utf8.ValidString(req.Description) || utf8.RuneCountInString(req.Description) > maxDescription {
		return req, validation(fmt.Sprintf("description must be valid text of at most %d characters", maxDescription))
	}
	return req, checkText("priority", req.Priority, maxShortField)
}

// renameRequest is PUT /cases/{id} (contract §4.6).
type renameRequest struct {
	Title string `json:"title"`
}

func decodeRename(body io.Reader) (renameRequest, error) {
	var req renameRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.Title = strings.TrimSpace(req.Title)
	if req.Title == "" {
		return req, validation(fmt.Sprintf("title must be 1-%d characters", maxTitleChars))
	}
	return req, checkText("title", req.Title, maxTitleChars)
}

// titleRequest is POST /cases/{id}/title; the server only reports the
// existing title, so the fields are checked for type and range only.
type titleRequest struct {
	MaxWords int    `json:"max_words"`
	Hint     string `json:"hint"`
}

func decodeTitle(body io.Reader) (titleRequest, error) {
	var req titleRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	if req.MaxWords < 0 || req.MaxWords > 100 {
		return req, validation("max_words must be between 0 and 100")
	}
	return req, checkText("hint", req.Hint, maxReasonChars)
}

// statusRequest is POST /cases/{id}/status; closeRequest is /close, the
// same change with the target fixed.
type statusRequest struct {
	ToState       string `json:"to_state"`
	Reason        string `json:"reason"`
	ClosureReason string `json:"closure_reason"`
}

type closeRequest struct {
	Reason        string `json:"reason"`
	ClosureReason string `json:"closure_reason"`
}

func decodeClose(body io.Reader) (closeRequest, error) {
	var req closeRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.Reason, req.ClosureReason = strings.TrimSpace(req.Reason), strings.TrimSpace(req.ClosureReason)
	return req, checkReasons(req.Reason, req.ClosureReason)
}

func decodeStatus(body io.Reader) (statusRequest, error) {
	var req statusRequest
	if err := decodeJSON(body, &req); err != nil {
		return req, err
	}
	req.ToState = strings.ToLower(strings.TrimSpace(req.ToState))
	req.Reason, req.ClosureReason = strings.TrimSpace(req.Reason), strings.TrimSpace(req.ClosureReason)
	switch req.ToState {
	case actors.StatusInquiry, actors.StatusInvestigating, actors.StatusResolved, actors.StatusClosed:
	case "":
		return req, validation("to_state is required")
	default:
		return req, validation("to_state must be one of inquiry, investigating, resolved, closed")
	}
	return req, checkReasons(req.Reason, req.ClosureReason)
}

// checkReasons allows line breaks in the free-text reason but not in the
// closure reason, which is an identifier.
func checkReasons(reason, closure string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonChars {
		return validation(fmt.Sprintf("reason must be valid text of at most %d characters", maxReasonChars))
	}
	return checkText("closure_reason", closure, maxShortField)
}

// page is a limit/offset pair from a query string.
type page struct {
	Limit, Offset int
}

// parsePage reads ?limit&offset: limit defaults to 50 and must be 1..100,
// offset defaults to 0 and must not be negative.
func parsePage(q url.Values) (page, error) { return parsePageDefault(q, defaultPageLimit) }

// parsePageDefault is parsePage with another default limit.
func parsePageDefault(q url.Values, defaultLimit int) (page, error) {
	p := page{Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return p, validation(fmt.Sprintf("limit must be an integer from 1 to %d", maxPageLimit))
		}
		p.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxOffset {
			return p, validation("offset must be a non-negative integer")
		}
		p.Offset = n
	}
	return p, nil
}

// parseIdempotencyKey checks the optional Idempotency-Key header against
// the extension's own rule (contract §4.2).
func parseIdempotencyKey(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	if len(h) < 8 || len(h) > 255 {
		return "", validation("Idempotency-Key must be 8-255 characters of A-Z a-z 0-9 _ -")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", validation("Idempotency-Key must be 8-255 characters of A-Z a-z 0-9 _ -")
		}
	}
	return h, nil
}
