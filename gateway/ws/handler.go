package ws

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/gateway/auth"
)

// GET /api/v1/ws: the upgrade, the registry of open connections (per-user
// cap, Shutdown), and the Origin policy. The protocol itself is in
// frames.go and conn.go, and documented in docs/protocol.md.

// Hub owns every WebSocket connection of a server: it counts them per
// user, closes them on Shutdown, and its WaitGroup covers each
// connection's reader (the handler goroutine) and writer.
type Hub struct {
	upgrader websocket.Upgrader
	timing   Timing
	limits   Limits
	maxUser  int

	log         *zap.Logger // the server's
	auth        TokenVerifier
	cases       CaseService
	evidence    EvidenceService
	metrics     Metrics
	http        Requests
	allowOrigin func(origin string) bool
	clientError func(err error) ClientError

	// stop ends every call a connection still makes into the services
	// once Shutdown's deadline has passed.
	stop    context.Context
	stopNow context.CancelFunc

	mu      sync.Mutex
	conns   map[*conn]string // → the user the connection counts against ("" before auth)
	perUser map[string]int
	closed  bool
	wg      sync.WaitGroup
}

// New checks cfg and deps, applies defaults and builds a Hub. Serve it on
// GET /api/v1/ws, outside any authentication middleware: it authenticates
// on the upgrade request or with the first frame.
func New(cfg Config, deps Deps) (*Hub, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	h := &Hub{
		timing:      cfg.Timing,
		limits:      cfg.Limits,
		maxUser:     cfg.MaxConnsPerUser,
		log:         deps.Logger,
		auth:        deps.Auth,
		cases:       deps.Cases,
		evidence:    deps.Evidence,
		metrics:     deps.Metrics,
		http:        deps.HTTP,
		allowOrigin: deps.AllowOrigin,
		clientError: deps.ClientError,
		conns:       map[*conn]string{},
		perUser:     map[string]int{},
	}
	h.stop, h.stopNow = context.WithCancel(context.Background())
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: h.timing.WriteWait,
		// Buffers come from the hijacked HTTP connection (4 KiB) for
		// reads and from a pool for writes, so an idle connection holds
		// no write buffer.
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       h.originAllowed,
		EnableCompression: false, // small JSON frames; compression costs more than it saves
		Error: func(w http.ResponseWriter, r *http.Request, status int, _ error) {
			if status == http.StatusForbidden {
				h.http.WriteError(w, r, ErrOriginRefused)
				return
			}
			h.http.WriteError(w, r, ErrBadHandshake)
		},
	}
	return h, nil
}

// add registers a connection before its upgrade; false once Shutdown has
// begun. The caller owns one WaitGroup count until it calls remove.
func (h *Hub) add(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = ""
	h.wg.Add(1)
	return true
}

// claim counts c against user's cap.
func (h *Hub) claim(c *conn, user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user] >= h.maxUser {
		return false
	}
	h.perUser[user]++
	h.conns[c] = user
	return true
}

func (h *Hub) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if user, ok := h.conns[c]; ok {
		if user != "" {
			if h.perUser[user]--; h.perUser[user] <= 0 {
				delete(h.perUser, user)
			}
		}
		delete(h.conns, c)
		h.wg.Done()
	}
}

// EndUser closes every connection of user, after a logout: each gets a
// logged_out error frame and closes with 4401. It returns how many.
func (h *Hub) EndUser(user string) int {
	h.mu.Lock()
	var cs []*conn
	for c, u := range h.conns {
		if u == user {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.closeAfter(CloseUnauthorized, "logged out", errorFrame{Type: "error", Code: CodeLoggedOut,
			Message: "the user logged out: sign in again"})
	}
	return len(cs)
}

// attach records the upgraded connection, so Shutdown can drop it.
func (h *Hub) attach(c *conn, ws *websocket.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.ws = ws
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Shutdown refuses new WebSocket connections, closes the open ones with
// 1001 (going away) and waits until their goroutines have ended. When ctx
// ends first, the remaining connections are dropped without a close frame
// and Shutdown still waits for their goroutines, which then end at once.
// It is safe to call more than once and concurrently. Call it after the
// http.Server stopped accepting and before the case system shuts down.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeNow(CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.stopNow()
	h.mu.Lock()
	for c := range h.conns {
		if c.ws != nil {
			_ = c.ws.Close() // unblocks a writer stuck on a dead peer
		}
	}
	h.mu.Unlock()
	<-done
	return ctx.Err()
}

// originAllowed is the upgrader's CheckOrigin. A request without Origin
// comes from a non-browser client, which no web page can drive, so it is
// allowed (it still has to authenticate). A browser's Origin must be on
// the allow-list or be the API's own host.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // includes "null" (sandboxed frames, file://)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return h.allowOrigin(origin)
}

// ServeHTTP upgrades GET /api/v1/ws and runs the connection's reader on
// its own goroutine until the connection ends. Everything that can be
// refused with an HTTP status is refused before the upgrade.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.isClosed() {
		h.http.WriteError(w, r, ErrShuttingDown)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		h.http.WriteError(w, r, ErrBadHandshake)
		return
	}
	if !h.originAllowed(r) {
		h.metrics.Refused.WithLabelValues("origin").Inc()
		h.http.WriteError(w, r, ErrOriginRefused)
		return
	}
	// Non-browser clients may authenticate on the upgrade request; a bad
	// token is refused here with the usual 401.
	var p auth.Principal
	headerAuth := r.Header.Get("Authorization") != ""
	if headerAuth {
		var err error
		if p, err = h.http.Authenticate(r); err != nil {
			h.http.WriteError(w, r, err)
			return
		}
	}
	// The connection outlives this handler (its reader runs on its own
	// goroutine), while the access log reads the request's record when
	// the handler returns: the connection keeps only the request id.
	c := newConn(h, h.http.RequestID(r))
	// Until the connection is handed to its reader goroutine, this
	// function owns it and must release it on every early return.
	handedOff := false
	defer func() {
		if !handedOff {
			c.cancel()
		}
	}()
	if !h.add(c) {
		h.http.WriteError(w, r, ErrShuttingDown)
		return
	}
	defer func() {
		if !handedOff {
			h.remove(c)
		}
	}()
	if headerAuth && !h.claim(c, p.UserID) {
		h.metrics.Refused.WithLabelValues("too_many_connections").Inc()
		h.http.WriteError(w, r, ErrTooManyConns)
		return
	}
	if headerAuth {
		// A logout between the check above and the claim missed this
		// connection (EndUser closes claimed ones only): check again.
		if _, err := h.http.Authenticate(r); err != nil {
			h.http.WriteError(w, r, err)
			return
		}
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	h.http.Upgraded(r)
	h.attach(c, ws)
	c.markAttached()
	h.metrics.Connections.Inc()
	c.log.Debug("ws connected", zap.Bool("header_auth", headerAuth))

	// The reader runs on a goroutine of its own so that the HTTP handler
	// goroutine, whose stack grew through the server and the middleware,
	// ends here: an idle connection keeps one small goroutine stack (the
	// writer runs only while frames are queued). The hub's WaitGroup
	// (added in h.add, done in h.remove) owns the reader, which waits for
	// the last writer before it ends.
	handedOff = true
	c.startPings()
	go func() {
		defer h.remove(c)
		defer c.cancel()
		defer h.metrics.Connections.Dec()
		if headerAuth {
			c.ready(p)
		}
		c.readLoop()
		c.cleanup()
	}()
}
