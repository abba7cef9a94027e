package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// WebSocket protocol v1 (docs/protocol.md): the frames a client may send,
// the frames the connection itself sends, and the one decoder of client
// bytes, a pure function so it can be fuzzed. Case frames (event,
// subscribed, turn_started, delta, turn_done) are actors.Frame values,
// already shaped for the wire.

// wsProtocol is the version announced in the ready frame.
const wsProtocol = 1

// Client frame types.
const (
	frameAuth        = "auth"
	frameSubscribe   = "subscribe"
	frameUnsubscribe = "unsubscribe"
	frameTurn        = "turn"
	frameCancel      = "cancel"
	framePing        = "ping"
)

// Error-frame codes. Errors of the case service map through WSCode.
const (
	wsErrUnauthorized = "unauthorized"
	wsErrMalformed    = "malformed_frame"
	wsErrUnknownType  = "unknown_type"
	wsErrInvalid      = "invalid_frame"
	wsErrNotFound     = "not_found"
	wsErrRateLimited  = "rate_limited"
	wsErrLimit        = "limit_exceeded"
	wsErrTooManyConns = "too_many_connections"
	wsErrInternal     = "internal"
	wsErrTokenExpired = "token_expired"
	wsErrLoggedOut    = "logged_out"
	// Passed through from the case actor, which reports them as
	// CASE_RESTARTED / CASE_DELETED.
	wsErrCaseRestarted = "case_restarted"
	wsErrCaseDeleted   = "case_deleted"
)

// Close codes beyond RFC 6455's (4000-4999 are the application's).
const (
	closeSlowConsumer   = 4008 // the outbound queue overflowed; resume with since_seq
	closeUnauthorized   = 4401 // no or bad authentication
	closeTooManyConns   = 4429 // over WSMaxConnsPerUser (first-frame auth only)
	closeGoingAway      = 1001 // server shutdown
	closeNormal         = 1000
	closeInternalServer = 1011
)

// Limits of one client frame.
const (
	maxClientMsgIDLen = 128
	maxAttachments    = 20
	maxAttachmentID   = 128
	reservedMsgPrefix = "rest:" // client_msg_ids of REST turns
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

func (e *frameError) Error() string { return "gateway: ws frame: " + e.Code + ": " + e.Message }

// decodeClientFrame parses and checks one text frame. Unknown fields are
// ignored (newer clients), explicit nulls mean absent. The returned error,
// when not nil, carries the ref (client_msg_id or case_id) whenever the
// frame named one, so the client can tell which request failed.
func decodeClientFrame(data []byte) (clientFrame, *frameError) {
	var f clientFrame
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !utf8.Valid(data) || len(trimmed) == 0 || trimmed[0] != '{' {
		return f, &frameError{Code: wsErrMalformed, Message: "a frame is one JSON object"}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		// A value of the wrong type still leaves the other fields decoded.
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return f, &frameError{Code: wsErrInvalid, Ref: refOf(f), Message: fmt.Sprintf("%s must be %s", typ.Field, kindName(typ.Type))}
		}
		return clientFrame{}, &frameError{Code: wsErrMalformed, Message: "a frame is one JSON object"}
	}
	ref := refOf(f)
	invalid := func(msg string) (clientFrame, *frameError) {
		return f, &frameError{Code: wsErrInvalid, Ref: ref, Message: msg}
	}
	switch f.Type {
	case frameAuth:
		if f.Token == "" || len(f.Token) > maxTokenLen {
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
		if len(f.Attachments) > maxAttachments {
			return invalid(fmt.Sprintf("at most %d attachments per turn", maxAttachments))
		}
		for _, a := range f.Attachments {
			if a == "" || len(a) > maxAttachmentID || !printable(a) {
				return invalid(fmt.Sprintf("attachments are file ids of 1-%d printable characters", maxAttachmentID))
			}
		}
		if strings.TrimSpace(f.Text) == "" && len(f.Attachments) == 0 {
			return invalid("a turn needs text or attachments")
		}
		if len(f.Text) > maxTurnTextBytes {
			return invalid(fmt.Sprintf("text must be at most %d bytes", maxTurnTextBytes))
		}
	case "":
		return invalid("type is required")
	default:
		return f, &frameError{Code: wsErrUnknownType, Ref: ref, Message: fmt.Sprintf("unknown frame type %q", truncateRunes(f.Type, 40))}
	}
	return f, nil
}

// refOf picks the id a client would use to match an error to its request.
func refOf(f clientFrame) string {
	for _, s := range []string{f.ClientMsgID, f.CaseID} {
		if s != "" && len(s) <= maxClientMsgIDLen && printable(s) {
			return s
		}
	}
	return ""
}

func checkCaseID(id string) string {
	if id == "" {
		return "case_id is required"
	}
	if len(id) > maxCaseIDLen || !printable(id) {
		return "case_id is not a case id"
	}
	return ""
}

func checkClientMsgID(id string) string {
	switch {
	case id == "":
		return "client_msg_id is required"
	case len(id) > maxClientMsgIDLen || !printable(id):
		return fmt.Sprintf("client_msg_id must be 1-%d printable characters", maxClientMsgIDLen)
	case strings.HasPrefix(id, reservedMsgPrefix):
		return "client_msg_id may not start with " + reservedMsgPrefix + " (reserved for REST turns)"
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

func truncateRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
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
// reads to place an ack right before it (see wsConn.Deliver).
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
