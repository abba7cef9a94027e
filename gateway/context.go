package gateway

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/gateway/auth"
)

type ctxKey int

const (
	keyInfo ctxKey = iota
	keyPrincipal
	keyCase
)

// requestInfo is the per-request record the outer middleware creates and
// inner middleware fills in (who the caller is, which case), so the access
// log written on the way out can name them. Only middleware running on the
// request's goroutine writes it.
type requestInfo struct {
	id       string
	log      *zap.Logger
	userID   string
	caseID   string
	upgraded bool // the handler took the connection over (101 Switching Protocols)
}

// logger is the server's logger, or the global one when the request did not
// come through a Server (WriteError used by a stand-alone handler).
func (i *requestInfo) logger() *zap.Logger {
	if i.log != nil {
		return i.log
	}
	return zap.L()
}

// noInfo stands in when a request did not pass through requestID; it is
// shared, so it is only ever read (see setUser/setCase).
var noInfo = &requestInfo{}

func (i *requestInfo) setUser(id string) {
	if i != noInfo {
		i.userID = id
	}
}

func (i *requestInfo) setCase(id string) {
	if i != noInfo {
		i.caseID = id
	}
}

func infoFrom(ctx context.Context) *requestInfo {
	if i, ok := ctx.Value(keyInfo).(*requestInfo); ok {
		return i
	}
	return noInfo
}

// RequestIDFrom returns the id of the request ctx belongs to, or "".
func RequestIDFrom(ctx context.Context) string { return infoFrom(ctx).id }

// PrincipalFrom returns the verified caller of an authenticated request.
func PrincipalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(keyPrincipal).(auth.Principal)
	return p, ok
}

// CaseFrom returns the case row that the ownership check loaded for a route
// under /api/v1/cases/{case_id}: the caller owns it.
func CaseFrom(ctx context.Context) (actors.CaseRow, bool) {
	c, ok := ctx.Value(keyCase).(actors.CaseRow)
	return c, ok
}

// routePattern is the matched chi pattern ("/api/v1/cases/{case_id}"), which
// unlike the path carries no ids and has bounded cardinality.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}
