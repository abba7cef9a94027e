package ws

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/gateway/auth"
)

// Deps are what a Hub needs from the server it is mounted on. Every field
// but Logger is required.
type Deps struct {
	// Logger is the server's; connections log under its "ws" child. Nil
	// logs nothing.
	Logger *zap.Logger
	// Auth verifies the token of an auth frame.
	Auth TokenVerifier
	// Cases is the case system: subscriptions and turns.
	Cases CaseService
	// Evidence resolves a turn's attachments.
	Evidence EvidenceService
	// Metrics are the series the Hub updates.
	Metrics Metrics
	// HTTP is the server's side of the upgrade request.
	HTTP Requests
	// AllowOrigin reports whether a browser's Origin is on the allow-list.
	// It is asked only for a request whose Origin is neither absent (not a
	// browser) nor the API's own host, which are always allowed.
	AllowOrigin func(origin string) bool
	// ClientError is what a client is shown of a failed call into the
	// auth, case or evidence service.
	ClientError func(err error) ClientError
}

func (d Deps) validate() error {
	var missing string
	switch {
	case d.Auth == nil:
		missing = "Auth"
	case d.Cases == nil:
		missing = "Cases"
	case d.Evidence == nil:
		missing = "Evidence"
	case d.HTTP == nil:
		missing = "HTTP"
	case d.AllowOrigin == nil:
		missing = "AllowOrigin"
	case d.ClientError == nil:
		missing = "ClientError"
	default:
		return d.Metrics.validate()
	}
	return fmt.Errorf("%w: Deps.%s is required", ErrInvalidConfig, missing)
}

// TokenVerifier checks an access token (implemented by *auth.Service). Its
// errors go through Deps.ClientError.
type TokenVerifier interface {
	Verify(ctx context.Context, accessToken string) (auth.Principal, error)
}

// CaseService is what a connection needs from the case system
// (implemented by *actors.Cases). A case the caller may not see is
// actors.ErrNotFound, like one that does not exist.
type CaseService interface {
	Get(ctx context.Context, owner, caseID string) (actors.CaseRow, error)
	// SubmitTurn returns once the user message is durable; a repeated
	// ClientMsgID returns the first ack.
	SubmitTurn(ctx context.Context, req actors.TurnRequest) (actors.Ack, error)
	CancelTurn(ctx context.Context, owner, caseID string) error
	// Subscribe replays the events after sinceSeq to sub, then a
	// "subscribed" frame, then live frames; sub.Deliver runs on the case
	// actor and must not block.
	Subscribe(ctx context.Context, owner, caseID string, sinceSeq uint64, sub actors.Subscriber) (uint64, error)
	Unsubscribe(ctx context.Context, owner, caseID string, sub actors.Subscriber)
}

// EvidenceService resolves the files a turn attaches (implemented by the
// gateway over the evidence store). It knows cases only by id and checks
// no owner: the connection checks the caller's ownership of caseID first.
type EvidenceService interface {
	// Ref is how the case records file fileID of caseID with a message;
	// evidence.ErrNotFound when the case has no such file.
	Ref(ctx context.Context, caseID, fileID string) (actors.EvidenceRef, error)
}

// Requests is the server's side of an upgrade request (implemented by the
// gateway): its id, its bearer token, its access log and its error
// envelope.
type Requests interface {
	// RequestID is the id the request is logged under; a fresh one when
	// it has none.
	RequestID(r *http.Request) string
	// Authenticate verifies the bearer token of an upgrade request that
	// carries an Authorization header and names the user in the
	// request's access log. A bad token is an error for WriteError.
	Authenticate(r *http.Request) (auth.Principal, error)
	// Upgraded records that the handler took the connection over (the
	// access log reports 101).
	Upgraded(r *http.Request)
	// WriteError answers a request refused before the upgrade, with one
	// of this package's errors (ErrShuttingDown, ErrBadHandshake,
	// ErrOriginRefused, ErrTooManyConns) or one of Authenticate's.
	WriteError(w http.ResponseWriter, r *http.Request, err error)
}

// ClientError is what a client is shown of a failed call.
type ClientError struct {
	Code    string // the server's error code (CASE_DEGRADED); logged, not sent
	Frame   string // the error frame's code (case_degraded)
	Message string // the error frame's message
	// Internal marks an unexpected error: Message hides its text and the
	// connection logs it.
	Internal bool
	// ServerFault marks an error the server is to blame for (HTTP 5xx);
	// the connection logs it.
	ServerFault bool
}

// Metrics are the series a Hub updates (faultmaven_ws_*); the server
// creates and registers them. All are required.
type Metrics struct {
	Connections prometheus.Gauge       // open connections (authenticated or not yet)
	FramesIn    prometheus.Counter     // frames received from clients
	FramesOut   prometheus.Counter     // frames written to clients
	Coalesced   prometheus.Counter     // deltas merged into an earlier queued delta
	SlowCloses  prometheus.Counter     // connections closed (4008) because their queue overflowed
	Refused     *prometheus.CounterVec // connections refused or closed before use, by "reason"
	AckSeconds  prometheus.Observer    // from reading a turn frame to writing its ack
}

func (m Metrics) validate() error {
	for _, f := range []struct {
		name string
		nil  bool
	}{
		{"Connections", m.Connections == nil}, {"FramesIn", m.FramesIn == nil}, {"FramesOut", m.FramesOut == nil},
		{"Coalesced", m.Coalesced == nil}, {"SlowCloses", m.SlowCloses == nil}, {"Refused", m.Refused == nil},
		{"AckSeconds", m.AckSeconds == nil},
	} {
		if f.nil {
			return fmt.Errorf("%w: Deps.Metrics.%s is required", ErrInvalidConfig, f.name)
		}
	}
	return nil
}

// Errors a Hub hands to Requests.WriteError (refusals before the upgrade)
// or to Deps.ClientError (a turn's attachment); the server maps them to
// what a client sees.
var (
	ErrShuttingDown  = errors.New("ws: shutting down")
	ErrBadHandshake  = errors.New("ws: not a websocket upgrade")
	ErrOriginRefused = errors.New("ws: origin not allowed")
	ErrTooManyConns  = errors.New("ws: too many connections for the user")
	// ErrAttachmentNotFound is wrapped with the sentence a client sees:
	// "attachment <id> is not a file uploaded to this case".
	ErrAttachmentNotFound = errors.New("ws: attachment not found")
)
