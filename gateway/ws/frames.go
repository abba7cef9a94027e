package ws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
)

// WebSocket protocol v1 (docs/protocol.md): the frames a client may send,
// the frames the connection itself sends, and the one decoder of client
// bytes, a pure function so it can be fuzzed. Case frames (event,
// subscribed, turn_started, delta, turn_done) are actors.Frame values,
// already shaped for the wire.

// protocolVersion is the version announced in the ready frame.
const protocolVersion = 1

// Client frame types.
const (
	frameAuth        = "auth"
	frameSubscribe   = "subscribe"
	frameUnsubscribe = "unsubscribe"
	frameTurn        = "turn"
	frameCancel      = "cancel"
	framePing        = "ping"
)

// Error-frame codes (docs/protocol.md). Errors of the services map to them
// through Deps.ClientError (the gateway's WSCode table).
const (
	CodeUnauthorized  = "unauthorized"
	CodeMalformed     = "malformed_frame"
	CodeUnknownType   = "unknown_type"
	CodeInvalid       = "invalid_frame"
	CodeNotFound      = "not_found"
	CodeRateLimited   = "rate_limited"
	CodeLimitExceeded = "limit_exceeded"
	CodeTooManyConns  = "too_many_connections"
	CodeInternal      = "internal"
	CodeTokenExpired  = "token_expired"
	CodeLoggedOut     = "logged_out"
	// Passed through from the case actor, which reports them as
	// CASE_RESTARTED / CASE_DELETED.
	CodeCaseRestarted = "case_restarted"
	CodeCaseDeleted   = "case_deleted"
)

// Close codes beyond RFC 6455's (4000-4999 are the application's).
const (
	CloseSlowConsumer   = 4008 // the outbound queue overflowed; resume with since_seq
	CloseUnauthorized   = 4401 // no or bad authentication
	CloseTooManyConns   = 4429 // over Config.MaxConnsPerUser (first-frame auth only)
	CloseGoingAway      = 1001 // server shutdown
	CloseNormal         = 1000
	CloseInternalServer = 1011
)

// Limits of one client frame. The first three are the bounds the
// gateway's REST routes apply to the same fields.
const (
	MaxTokenLen        = 4096    // an auth frame's token, like a bearer token
	MaxCaseIDLen       = 128     // before it reaches the case service
	MaxTurnTextBytes   = 200_000 // the case service's cap on a turn's text
	MaxClientMsgIDLen  = 128
	MaxAttachments     = 20
	MaxAttachmentIDLen = 128
	ReservedMsgPrefix  = "rest:" // client_msg_ids of REST turns
)

// clientFrame is any client frame; which fields matter depends on Type.
type clientFrame struct {
	Type        string   `json:"type"`
	Token       string   `json:"token"`
	CaseID      string   `json:"case_id"`
	SinceSeq    uint64   `json:"since_seq"`
	ClientMsgID string   `json:"client_msg_id"`
	Text        string   `json:"text"`
	Attachments []string `json:"attachments"`
}

// frameError is a problem with one client frame, answered by an error
// frame; the connection stays open.
type frameError struct {
	Code    string
	Message string
	Ref     string
}

func (e *frameError) Error() string { return "ws: frame: " + e.Code + ": " + e.Message }

// decodeClientFrame parses and checks one text frame. Unknown fields are
// ignored (newer clients), explicit nulls mean absent. The returned error,
// when not nil, carries the ref (client_msg_id or case_id) whenever the
// frame named one, so the client can tell which request failed.
func decodeClientFrame(data []byte) (clientFrame, *frameError) {
	var f clientFrame
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !utf8.Valid(data) || len(trimmed) == 0 || trimmed[0] != '{' {
		return f, &frameError{Code: CodeMalformed, Message: "a frame is one JSON object"}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		// A value of the wrong type still leaves the other fields decoded.
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return f, &frameError{Code: CodeInvalid, Ref: refOf(f), Message: fmt.Sprintf("%s must be %s", typ.Field, KindName(typ.Type))}
		}
		return clientFrame{}, &frameError{Code: CodeMalformed, Message: "a frame is one JSON object"}
	}
	ref := refOf(f)
	invalid := func(msg string) (clientFrame, *frameError) {
		return f, &frameError{Code: CodeInvalid, Ref: ref, Message: msg}
	}
	switch f.Type {
	case frameAuth:
		if f.Token == "" || len(f.Token) > MaxTokenLen {
			return invalid("token is required")
		}
	case framePing:
	case frameSubscribe, frameUnsubscribe, frameCancel:
		if msg := checkCaseID(f.CaseID); msg != "" {
			return invalid(msg)
		}
	case frameTurn:
		if msg := checkCaseID(f.CaseID); msg != "" {
			return invalid(msg)
		}
		if msg := checkClientMsgID(f.ClientMsgID); msg != "" {
			return invalid(msg)
		}
		if len(f.Attachments) > MaxAttachments {
			return invalid(fmt.Sprintf("at most %d attachments per turn", MaxAttachments))
		}
		for _, a := range f.Attachments {
			if a == "" || len(a) > MaxAttachmentIDLen || !printable(a) {
				return invalid(fmt.Sprintf("attachments are file ids of 1-%d printable characters", MaxAttachmentIDLen))
			}
		}
		if strings.TrimSpace(f.Text) == "" && len(f.Attachments) == 0 {
			return invalid("a turn needs text or attachments")
		}
		if len(f.Text) > MaxTurnTextBytes {
			return invalid(fmt.Sprintf("text must be at most %d bytes", MaxTurnTextBytes))
		}
	case "":
		return invalid("type is required")
	default:
		return f, &frameError{Code: CodeUnknownType, Ref: ref, Message: fmt.Sprintf("unknown frame type %q", TruncateRunes(f.Type, 40))}
	}
	return f, nil
}

// refOf picks the id a client would use to match an error to its request.
func refOf(f clientFrame) string {
	for _, s := range []string{f.ClientMsgID, f.CaseID} {
		if s != "" && len(s) <= MaxClientMsgIDLen && printable(s) {
			return s
		}
	}
	return ""
}

func checkCaseID(id string) string {
	if id == "" {
		return "case_id is required"
	}
	if len(id) > MaxCaseIDLen || !printable(id) {
		return "case_id is not a case id"
	}
	return ""
}

func checkClientMsgID(id string) string {
	switch {
	case id == "":
		return "client_msg_id is required"
	case len(id) > MaxClientMsgIDLen || !printable(id):
		return fmt.Sprintf("client_msg_id must be 1-%d printable characters", MaxClientMsgIDLen)
	case strings.HasPrefix(id, ReservedMsgPrefix):
		return "client_msg_id may not start with " + ReservedMsgPrefix + " (reserved for REST turns)"
	}
	return ""
}

// printable reports valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// TruncateRunes keeps the first n characters of s, marking a cut with "…"
// (REST and WebSocket cut what they echo alike).
func TruncateRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// KindName names the JSON type a field must have, in words a client
// reads; the gateway's request decoder uses it too, so REST and WebSocket
// describe a wrong type alike.
func KindName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a different type"
}

// Frames the connection itself sends.

type readyFrame struct {
	Type     string `json:"type"`
	Protocol int    `json:"protocol"`
	UserID   string `json:"user_id"`
}

type ackFrame struct {
	Type        string `json:"type"`
	ClientMsgID string `json:"client_msg_id"`
	CaseID      string `json:"case_id"`
	Seq         uint64 `json:"seq"`
	Turn        int    `json:"turn"`
	// receivedAt is when the turn frame was read: the writer times the
	// ack from it (faultmaven_ws_ack_seconds). Not sent.
	receivedAt time.Time
}

type errorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

type pongFrame struct {
	Type string `json:"type"`
}

// userMessageRef is the part of a persisted user message the connection
// reads to place an ack right before it (see conn.Deliver).
type userMessageRef struct {
	Role        string `json:"role"`
	ClientMsgID string `json:"client_msg_id"`
	TurnNumber  int    `json:"turn_number"`
}

// isUserMessage reports whether data is a user message event with id.
func isUserMessage(data []byte, clientMsgID string) (userMessageRef, bool) {
	var m userMessageRef
	// Cheap pre-check: most events are not the one we wait for.
	if !bytes.Contains(data, []byte(`"user"`)) {
		return m, false
	}
	if json.Unmarshal(data, &m) != nil {
		return m, false
	}
	return m, m.Role == "user" && m.ClientMsgID == clientMsgID
}
