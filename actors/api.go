package actors

import (
	"errors"
	"time"
)

// Sentinel errors returned by the case service. The gateway maps each to one
// client-visible code and HTTP status.
var (
	ErrNotFound          = errors.New("actors: case not found")
	ErrInvalidTransition = errors.New("actors: status transition not allowed")
	ErrInvalidInput      = errors.New("actors: invalid input")
	ErrDegraded          = errors.New("actors: case is degraded after repeated failures")
	ErrTimeout           = errors.New("actors: case did not answer in time")
	ErrStopped           = errors.New("actors: case manager is shutting down")
)

// Case statuses (the wire calls this "state").
const (
	StatusInquiry       = "inquiry"
	StatusInvestigating = "investigating"
	StatusResolved      = "resolved"
	StatusClosed        = "closed"
)

// CreateCase asks for a new case owned by Owner. An empty Title asks for the
// placeholder "Case-YYMMDD-N". IdempotencyKey, when set, makes a retried
// create return the case the first call made.
type CreateCase struct {
	Owner          string
	Title          string
	Description    string
	Priority       string
	IdempotencyKey string
}

// CaseRow is the list/detail row of the copilot contract (§4).
type CaseRow struct {
	CaseID         string     `json:"case_id"`
	Title          string     `json:"title"`
	State          string     `json:"state"`
	Description    string     `json:"description"`
	Priority       string     `json:"priority,omitempty"`
	UserID         string     `json:"user_id"`
	OrganizationID string     `json:"organization_id"`
	CurrentTurn    int        `json:"current_turn"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	ClosureReason  *string    `json:"closure_reason"`
	ClosedAt       *time.Time `json:"closed_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	Degraded       bool       `json:"degraded,omitempty"`
}

// StatusChange is one immutable entry of a case's status history.
type StatusChange struct {
	From   string    `json:"from"`
	To     string    `json:"to"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// Message is one conversation message (§4.5).
type Message struct {
	MessageID  string    `json:"message_id"`
	Role       string    `json:"role"`
	Content    string    `json:"content"`
	CreatedAt  time.Time `json:"created_at"`
	TurnNumber int       `json:"turn_number"`
}

// CaseView is everything the /ui view model is built from.
type CaseView struct {
	Row           CaseRow
	StatusHistory []StatusChange
	Milestones    []string // completed milestone names
	Seq           uint64   // last event sequence number
	UploadedFiles int
	Hypotheses    []HypothesisView
	Solutions     []SolutionView
	PendingStatus string // a status change the agent proposed, awaiting the user
	Tokens        TokenUsage
}

// HypothesisView is one hypothesis of a case.
type HypothesisView struct {
	HypothesisID string `json:"hypothesis_id"`
	Statement    string `json:"statement"`
	Category     string `json:"category"`
	Status       string `json:"status"`
	Confidence   string `json:"confidence"`
	Rationale    string `json:"rationale,omitempty"`
}

// SolutionView is one proposed solution.
type SolutionView struct {
	SolutionID  string `json:"solution_id"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// TokenUsage counts the LLM tokens a case has used.
type TokenUsage struct {
	Prompt     int64 `json:"prompt_tokens"`
	Completion int64 `json:"completion_tokens"`
}

// ValidNextStates lists the statuses a case in status s may move to.
func ValidNextStates(s string) []string {
	switch s {
	case StatusInquiry:
		return []string{StatusInvestigating, StatusResolved, StatusClosed}
	case StatusInvestigating:
		return []string{StatusResolved, StatusClosed}
	default:
		return []string{}
	}
}
