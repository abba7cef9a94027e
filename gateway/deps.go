package gateway

import (
	"context"
	"time"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/session"
)

// AuthService is what the gateway needs from the account service
// (implemented by *auth.Service). Errors are the auth sentinels.
type AuthService interface {
	RegistrationOpen() bool
	Register(ctx context.Context, u auth.NewUser) (auth.Tokens, error)
	Login(ctx context.Context, username, password string) (auth.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (auth.Tokens, error)
	Logout(ctx context.Context, userID string) (int, error)
	Verify(ctx context.Context, accessToken string) (auth.Principal, error)
	User(ctx context.Context, userID string) (auth.User, error)
}

// SessionService is what the gateway needs from the client-session service
// (implemented by *session.Service). An empty userID is an anonymous session.
type SessionService interface {
	CreateOrResume(ctx context.Context, userID, clientID, sessionType string, timeoutMinutes int) (session.Session, bool, error)
	Heartbeat(ctx context.Context, userID, sessionID string) (session.Session, error)
}

// CaseService is what the gateway needs from the case system (implemented
// by *actors.Cases). Every method that names a case returns
// actors.ErrNotFound both when it does not exist and when owner may not see
// it, so the two are indistinguishable to a client.
type CaseService interface {
	Create(ctx context.Context, req actors.CreateCase) (actors.CaseRow, error)
	List(ctx context.Context, owner string, limit, offset int) ([]actors.CaseRow, int, error)
	Get(ctx context.Context, owner, caseID string) (actors.CaseRow, error)
	View(ctx context.Context, owner, caseID string) (actors.CaseView, error)
	Messages(ctx context.Context, owner, caseID string, limit, offset int) ([]actors.Message, int, error)
	Rename(ctx context.Context, owner, caseID, title string) (actors.CaseRow, error)
	ChangeStatus(ctx context.Context, owner, caseID, to, reason, closureReason string) (actors.CaseRow, error)
	Delete(ctx context.Context, owner, caseID string) error

	// Turns. SubmitTurn returns once the user message is durable; a
	// repeated ClientMsgID returns the first ack. Subscribe replays the
	// events after sinceSeq to sub, then a "subscribed" frame, then live
	// frames; sub.Deliver runs on the case actor and must not block.
	SubmitTurn(ctx context.Context, req actors.TurnRequest) (actors.Ack, error)
	CancelTurn(ctx context.Context, owner, caseID string) error
	Subscribe(ctx context.Context, owner, caseID string, sinceSeq uint64, sub actors.Subscriber) (uint64, error)
	Unsubscribe(ctx context.Context, owner, caseID string, sub actors.Subscriber)
	TurnResult(ctx context.Context, owner, caseID string, turn int) (actors.TurnOutcome, error)
	AwaitTurn(ctx context.Context, owner string, ack actors.Ack, wait time.Duration) (actors.TurnOutcome, error)
	// Egress is the audit of what was sent to LLMs for a case; it checks
	// no owner, so only admins may reach it.
	Egress(ctx context.Context, caseID string) ([]actors.EgressRecord, error)
	// Timeline merges the case's own history with what its evidence says
	// happened when, oldest first.
	Timeline(ctx context.Context, owner, caseID string) ([]actors.TimelineEntry, error)
}

// EvidenceService is what the gateway needs from the evidence store
// (implemented by *evidence.Store). It knows cases only by id and checks no
// owner: every caller must have checked the caller's ownership of caseID
// first (CaseRouter does, the WebSocket asks the case service). A file id
// of another case is evidence.ErrNotFound, like one that does not exist.
type EvidenceService interface {
	// Put streams u.Body into the store; over the store's cap it is
	// evidence.ErrTooLarge and an empty body evidence.ErrEmpty, and in both
	// cases nothing is kept.
	Put(ctx context.Context, u evidence.Upload) (evidence.File, error)
	List(ctx context.Context, caseID string) ([]evidence.File, error)
	// Count is len(List) without reading the records.
	Count(ctx context.Context, caseID string) (int, error)
	Get(ctx context.Context, caseID, fileID string) (evidence.File, error)
	// Digests returns the files with their LLM digests, newest first, one
	// per distinct content.
	Digests(ctx context.Context, caseID string) ([]evidence.File, error)
	Delete(ctx context.Context, caseID, fileID string) error
	DeleteCase(ctx context.Context, caseID string) error
}
