package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/faultmaven/faultmaven/gateway/auth"
)

// maxTokenLen bounds a bearer token before it reaches the verifier; ours
// are a few hundred bytes.
const maxTokenLen = 4096

// errNoCredentials is parseBearer's "no Authorization header at all", which
// optional-auth routes treat as anonymous.
var errNoCredentials = errors.New("gateway: no credentials")

// parseBearer extracts the token of "Authorization: Bearer <token>". A
// missing header is errNoCredentials; anything else that is not a usable
// bearer token is errInvalidToken.
func parseBearer(header string) (string, error) {
	if header == "" {
		return "", errNoCredentials
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errInvalidToken
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen || strings.ContainsAny(token, " \t\r\n") {
		return "", errInvalidToken
	}
	return token, nil
}

// verify resolves the request's credentials. ok is false when the request
// carries none; a present-but-bad token is an error.
func (s *Server) verify(r *http.Request) (p auth.Principal, ok bool, err error) {
	token, err := parseBearer(r.Header.Get("Authorization"))
	if errors.Is(err, errNoCredentials) {
		return auth.Principal{}, false, nil
	}
	if err != nil {
		return auth.Principal{}, false, err
	}
	p, err = s.auth.Verify(r.Context(), token)
	if err != nil {
		// A storage failure must not look like a bad token: a 401 logs the
		// extension out. ClientError maps only auth.ErrInvalidToken to 401.
		return auth.Principal{}, false, err
	}
	if p.UserID == "" {
		return auth.Principal{}, false, errInvalidToken
	}
	return p, true, nil
}

func (s *Server) withPrincipal(r *http.Request, p auth.Principal) *http.Request {
	infoFrom(r.Context()).setUser(p.UserID)
	return r.WithContext(context.WithValue(r.Context(), keyPrincipal, p))
}

// authenticate requires a valid bearer token. X-Session-Id is advisory and
// never consulted here (contract §3.3).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := s.verify(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if !ok {
			WriteError(w, r, errNotAuthenticated)
			return
		}
		next.ServeHTTP(w, s.withPrincipal(r, p))
	})
}

// optionalAuth lets a request without credentials through anonymously, but
// a request that presents a token must present a good one.
func (s *Server) optionalAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok, err := s.verify(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if ok {
			r = s.withPrincipal(r, p)
		}
		next.ServeHTTP(w, r)
	})
}

// maxCaseIDLen bounds the path parameter before it reaches the case service.
const maxCaseIDLen = 128

// caseScope authorises every route under /api/v1/cases/{case_id} before its
// handler runs or its body is read: the caller must own the case, and a
// case that is missing or someone else's is the same 404. Routes mounted on
// CaseRouter later inherit this, so IDOR protection does not depend on each
// handler remembering it. The row it loads is available as CaseFrom.
func (s *Server) caseScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			WriteError(w, r, errNotAuthenticated)
			return
		}
		id := chi.URLParam(r, "case_id")
		if id == "" || len(id) > maxCaseIDLen {
			WriteError(w, r, errCaseNotFound)
			return
		}
		row, err := s.cases.Get(r.Context(), p.UserID, id)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if row.UserID != p.UserID { // the service promises this; do not rely on it alone
			WriteError(w, r, errCaseNotFound)
			return
		}
		infoFrom(r.Context()).setCase(row.CaseID)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCase, row)))
	})
}
