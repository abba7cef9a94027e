package gateway

import (
	"context"
	"net/http"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/ws"
)

// GET /api/v1/ws is package ws's Hub (the WebSocket protocol v1 of
// docs/protocol.md). This file joins it to the server: the services it
// calls, the metrics it updates, the request bookkeeping of the
// middleware, and the one error table, each through the narrow interfaces
// ws declares.

var (
	_ ws.Requests        = wsRequests{}
	_ ws.EvidenceService = wsEvidence{}
)

// newWSHub builds the server's WebSocket hub; tune, when not nil, adjusts
// its clocks and limits first.
func (s *Server) newWSHub(tune func(*ws.Config)) (*ws.Hub, error) {
	cfg := ws.Config{MaxConnsPerUser: s.cfg.WSMaxConnsPerUser}
	if tune != nil {
		tune(&cfg)
	}
	return ws.New(cfg, ws.Deps{
		Logger:      s.log,
		Auth:        s.auth,
		Cases:       s.cases,
		Evidence:    wsEvidence{s.evidence},
		Metrics:     s.metrics.wsMetrics(),
		HTTP:        wsRequests{s},
		AllowOrigin: s.wsOrigins.allowed,
		ClientError: wsClientError,
	})
}

// Shutdown refuses new WebSocket connections, closes the open ones with
// 1001 (going away) and waits until their goroutines have ended. When ctx
// ends first, the remaining connections are dropped without a close frame
// and Shutdown still waits for their goroutines, which then end at once.
// It is safe to call more than once and concurrently. Call it after the
// http.Server stopped accepting and before the case system shuts down.
func (s *Server) Shutdown(ctx context.Context) error { return s.ws.Shutdown(ctx) }

// wsClientError is ClientError for an error frame: the frame's code comes
// from the WSCode table, and a 5xx status marks the server's fault.
func wsClientError(err error) ws.ClientError {
	e, internal := ClientError(err)
	return ws.ClientError{
		Code: e.Code, Frame: WSCode(e.Code), Message: e.Message,
		Internal: internal, ServerFault: HTTPStatus(e.Code) >= 500,
	}
}

// wsRequests is the server's side of an upgrade request: the request
// record the middleware keeps for the access log, bearer-token
// verification, and the error envelope.
type wsRequests struct{ s *Server }

func (q wsRequests) RequestID(r *http.Request) string {
	if info := infoFrom(r.Context()); info != noInfo {
		return info.id
	}
	return newRequestID() // the request did not come through requestID
}

func (q wsRequests) Authenticate(r *http.Request) (auth.Principal, error) {
	p, ok, err := q.s.verify(r)
	if err != nil {
		return auth.Principal{}, err
	}
	if !ok { // no Authorization header: the hub asks only when there is one
		return auth.Principal{}, errNotAuthenticated
	}
	infoFrom(r.Context()).setUser(p.UserID)
	return p, nil
}

func (q wsRequests) Upgraded(r *http.Request) {
	if info := infoFrom(r.Context()); info != noInfo { // noInfo is shared: never written
		info.upgraded = true
	}
}

func (q wsRequests) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, err)
}

// wsEvidence resolves a turn's attachments: the evidence store's files as
// the case records them with the message.
type wsEvidence struct{ store EvidenceService }

func (e wsEvidence) Ref(ctx context.Context, caseID, fileID string) (actors.EvidenceRef, error) {
	f, err := e.store.Get(ctx, caseID, fileID)
	if err != nil {
		return actors.EvidenceRef{}, err
	}
	return evidenceRef(f), nil
}
