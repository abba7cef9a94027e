package actors

import (
	"encoding/json"
	"time"
)

// TurnRequest is one user turn for a case.
type TurnRequest struct {
	Owner       string
	CaseID      string
	ClientMsgID string        // dedupe key: a repeated id gets the first ack and no second turn
	Text        string        // the user's message (may be empty when Attachments carry the content)
	Attachments []string      // evidence/file ids already stored (WebSocket turns)
	Evidence    []EvidenceRef // files uploaded with this turn (REST); recorded with the message
	// IntentType/Intent carry the extension's intents (copilot contract §4.8):
	// "status_transition" with {"to_state":…, "user_confirmed":true} and
	// "confirmation" with {"confirmation_value":true|false}.
	IntentType string
	Intent     map[string]any
	// ReceivedAt is when the gateway read the request (zero: unknown); it
	// only feeds the ack-stage metrics.
	ReceivedAt time.Time
}

// Ack means the user message is durable.
type Ack struct {
	CaseID      string `json:"case_id"`
	ClientMsgID string `json:"client_msg_id"`
	Seq         uint64 `json:"seq"`
	Turn        int    `json:"turn"`
	Duplicate   bool   `json:"duplicate,omitempty"`
}

// Turn outcome states.
const (
	TurnPending   = "pending"
	TurnCompleted = "completed"
	TurnFailed    = "failed"
)

// SuggestedAction is a clickable suggestion returned with a turn (§5.2).
type SuggestedAction struct {
	Type           string         `json:"type"`
	Label          string         `json:"label"`
	Payload        string         `json:"payload,omitempty"`
	Body           string         `json:"body,omitempty"`
	Hints          []string       `json:"hints,omitempty"`
	Intent         map[string]any `json:"intent,omitempty"`
	EvidenceNeedID string         `json:"evidence_need_id,omitempty"`
}

// TurnOutcome is where one turn stands.
type TurnOutcome struct {
	Turn                int
	Status              string // pending | completed | failed
	AgentResponse       string // markdown; sources are a list inside it
	CaseState           string
	MilestonesCompleted []string
	ProgressMade        bool
	SuggestedActions    []SuggestedAction
	RetrievalOnly       bool
	Reason              string // failed turns: a readable reason
}

// Frame is one server→client message about a case, ready to be marshalled
// as a WebSocket text frame (DESIGN.md protocol v1). "event" frames are
// persisted events with their seq; turn_started, delta and turn_done are
// ephemeral.
type Frame struct {
	Type    string          `json:"type"`
	CaseID  string          `json:"case_id"`
	Seq     uint64          `json:"seq,omitempty"`
	Kind    string          `json:"kind,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Turn    int             `json:"turn,omitempty"`
	Text    string          `json:"text,omitempty"`
	HeadSeq *uint64         `json:"head_seq,omitempty"`
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
}

// Subscriber receives a case's frames. Deliver must not block: it queues
// the frame and returns false when the subscriber cannot keep up, after
// which the case drops it (the client resumes with since_seq).
type Subscriber interface {
	Deliver(f Frame) bool
}

// EgressRecord is what was sent to an LLM for one turn (pseudonymised).
type EgressRecord struct {
	CaseID          string      `json:"case_id"`
	Turn            int         `json:"turn"`
	Call            int         `json:"call"`  // 1-based LLM call within the turn
	Phase           string      `json:"phase"` // sending | sent | failed
	At              time.Time   `json:"at"`
	Provider        string      `json:"provider"`
	Model           string      `json:"model"`
	Messages        []EgressMsg `json:"messages"`
	Tools           []string    `json:"tools"`
	SecretsRedacted int         `json:"secrets_redacted"`
	Error           string      `json:"error,omitempty"`
}

// EgressMsg is one message as it left for the LLM.
type EgressMsg struct {
	Role       string `json:"role"`
	Content    string `json:"content"`
	ToolCalls  string `json:"tool_calls,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
}
