package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/gateway/ws"
)

// Deps are the services the gateway serves. Auth, Sessions, Cases and
// Evidence are required. Ready (nil: always ready) backs /readyz. Registerer receives the
// gateway's metrics and Gatherer is what /metrics exposes; leave both nil
// for a private registry, or set both.
type Deps struct {
	Logger    *zap.Logger
	Auth      AuthService
	Sessions  SessionService
	Cases     CaseService
	Evidence  EvidenceService
	Knowledge KnowledgeService // optional: nil answers the knowledge routes with 503
	Ready     func() error
	// Components (optional) adds named parts to /readyz's body, e.g.
	// whether knowledge search runs hybrid or lexical only, and why.
	Components func() map[string]any
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
}

// Server is the HTTP layer: build it with New, serve Handler.
type Server struct {
	cfg        Config
	log        *zap.Logger
	auth       AuthService
	sessions   SessionService
	cases      CaseService
	evidence   EvidenceService
	knowledge  KnowledgeService
	ready      func() error
	components func() map[string]any
	gatherer   prometheus.Gatherer
	metrics    *httpMetrics
	origins    originMatcher
	limit      limiters
	ws         *ws.Hub
	// wsOrigins are the browser origins allowed to open a WebSocket.
	wsOrigins originMatcher

	root    *chi.Mux
	authed  chi.Router // the authenticated group
	inCases chi.Router // the group under /api/v1/cases/{case_id}
}

// New checks cfg and deps, applies defaults and builds the router with every
// route of the copilot contract this package serves.
func New(cfg Config, deps Deps) (*Server, error) { return newServer(cfg, deps, nil) }

// newServer is New; tuneWS, when not nil, adjusts the WebSocket hub's
// clocks and limits before the hub is built (tests shorten them).
func newServer(cfg Config, deps Deps, tuneWS func(*ws.Config)) (*Server, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case deps.Auth == nil:
		return nil, fmt.Errorf("%w: Deps.Auth is required", ErrInvalidConfig)
	case deps.Sessions == nil:
		return nil, fmt.Errorf("%w: Deps.Sessions is required", ErrInvalidConfig)
	case deps.Cases == nil:
		return nil, fmt.Errorf("%w: Deps.Cases is required", ErrInvalidConfig)
	case deps.Evidence == nil:
		return nil, fmt.Errorf("%w: Deps.Evidence is required (an *evidence.Store)", ErrInvalidConfig)
	case (deps.Gatherer == nil) != (deps.Registerer == nil):
		return nil, fmt.Errorf("%w: set both Deps.Gatherer and Deps.Registerer, or neither for a private registry", ErrInvalidConfig)
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Ready == nil {
		deps.Ready = func() error { return nil }
	}
	if deps.Registerer == nil {
		reg := prometheus.NewRegistry()
		deps.Registerer, deps.Gatherer = reg, reg
	}
	m, err := newHTTPMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway: register metrics: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        deps.Logger.Named("http"),
		auth:       deps.Auth,
		sessions:   deps.Sessions,
		cases:      deps.Cases,
		evidence:   deps.Evidence,
		knowledge:  deps.Knowledge,
		ready:      deps.Ready,
		components: deps.Components,
		gatherer:   deps.Gatherer,
		metrics:    m,
		origins:    newOriginMatcher(cfg.CORSOrigins),
		wsOrigins:  newOriginMatcher(cfg.WSOrigins),
	}
	s.limit = s.newLimiters()
	if s.ws, err = s.newWSHub(tuneWS); err != nil {
		return nil, fmt.Errorf("gateway: websocket: %w", err)
	}
	s.routes()
	return s, nil
}

// Handler is the whole HTTP API, ready to serve.
func (s *Server) Handler() http.Handler { return s.root }

// Router is the root router, with every request-level middleware applied
// (request id, access log, metrics, recovery, CORS, per-IP limit, body
// cap). Patterns are absolute. Mount routes before serving.
func (s *Server) Router() chi.Router { return s.root }

// AuthRouter is the group of routes that require a bearer token (and count
// against the per-user rate limit); PrincipalFrom is set in its handlers.
// Patterns are absolute.
func (s *Server) AuthRouter() chi.Router { return s.authed }

// CaseRouter is the group of routes under /api/v1/cases/{case_id}: on top
// of AuthRouter, the caller's ownership of the case is checked (404
// otherwise) before the handler runs, and CaseFrom returns its row.
// Patterns are absolute and must contain {case_id}, e.g.
// "/api/v1/cases/{case_id}/turns".
func (s *Server) CaseRouter() chi.Router { return s.inCases }

func (s *Server) routes() {
	r := chi.NewRouter()
	r.Use(s.requestID, s.clientIP(), s.observe, s.recoverer, s.cors(), s.limit.ip, s.limitBody)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, errRouteNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { WriteError(w, r, errMethodNotAllowed) })

	// Discovery and probes (no auth).
	r.Get("/v1/meta/capabilities", s.capabilities)
	r.Get("/health", s.health)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metricsHandler())

	// Local auth (§1.2, §2).
	r.Get("/api/v1/auth/config", s.authConfig)
	r.Group(func(r chi.Router) {
		r.Use(s.limit.auth)
		r.Post("/api/v1/auth/register", s.handle(s.register))
		r.Post("/api/v1/auth/login", s.handle(s.login))
		r.Post("/api/v1/auth/refresh", s.handle(s.refresh))
	})

	// WebSocket protocol v1: authenticates on the upgrade request or with
	// its first frame, so it sits outside the authenticated group.
	r.Get("/api/v1/ws", s.ws.ServeHTTP)

	// Sessions may be created before login (§3.1).
	r.With(s.optionalAuth).Post("/api/v1/sessions", s.handle(s.createSession))

	s.authed = r.Group(func(r chi.Router) {
		r.Use(s.authenticate, s.limit.user)
		r.Post("/api/v1/auth/logout", s.handle(s.logout))
		r.Get("/api/v1/auth/me", s.handle(s.me))
		r.Post("/api/v1/sessions/{session_id}/heartbeat", s.handle(s.heartbeat))
		r.Get("/api/v1/cases", s.handle(s.listCases))
		r.Post("/api/v1/cases", s.handle(s.createCase))
		r.Get("/api/v1/jobs/{job_id}", s.handle(s.getJob))
		r.Get("/api/v1/admin/cases/{case_id}/egress", s.handle(s.caseEgress))
		s.mountKnowledge(r)

		s.inCases = r.Group(func(r chi.Router) {
			r.Use(s.caseScope)
			r.Get("/api/v1/cases/{case_id}", s.handle(s.getCase))
			r.Put("/api/v1/cases/{case_id}", s.handle(s.renameCase))
			r.Delete("/api/v1/cases/{case_id}", s.handle(s.deleteCase))
			r.Get("/api/v1/cases/{case_id}/ui", s.handle(s.caseUI))
			r.Get("/api/v1/cases/{case_id}/messages", s.handle(s.caseMessages))
			r.Post("/api/v1/cases/{case_id}/title", s.handle(s.caseTitle))
			r.Post("/api/v1/cases/{case_id}/close", s.handle(s.closeCase))
			r.Post("/api/v1/cases/{case_id}/status", s.handle(s.changeStatus))
			r.Post("/api/v1/cases/{case_id}/turns", s.handle(s.submitTurn))
			r.Get("/api/v1/cases/{case_id}/timeline", s.handle(s.caseTimeline))
			r.Get("/api/v1/cases/{case_id}/uploaded-files", s.handle(s.listFiles))
			r.Post("/api/v1/cases/{case_id}/uploaded-files", s.handle(s.uploadFile))
			r.Get("/api/v1/cases/{case_id}/uploaded-files/{file_id}", s.handle(s.getFile))
			r.Delete("/api/v1/cases/{case_id}/uploaded-files/{file_id}", s.handle(s.deleteFile))
		})
	})
	s.root = r
}

// handle adapts a handler that returns its failure to the one error path.
func (s *Server) handle(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, err)
		}
	}
}

// body is the request body capped at MaxBodyBytes, whatever the route's
// middleware did.
func (s *Server) body(w http.ResponseWriter, r *http.Request) io.Reader {
	if r.Body == nil {
		return http.NoBody
	}
	return http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
}

// principal is the caller of a route in the authenticated group.
func principal(r *http.Request) (string, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.UserID == "" {
		return "", errNotAuthenticated
	}
	return p.UserID, nil
}

// errNoCase means a case route ran outside caseScope: a wiring bug.
var errNoCase = errors.New("gateway: case route mounted outside CaseRouter")

func scopedCase(r *http.Request) (string, string, error) {
	owner, err := principal(r)
	if err != nil {
		return "", "", err
	}
	row, ok := CaseFrom(r.Context())
	if !ok {
		return "", "", errNoCase
	}
	return owner, row.CaseID, nil
}
