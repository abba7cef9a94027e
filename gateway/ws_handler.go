package gateway

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
// ws_frames.go and ws_conn.go, and documented in docs/protocol.md.

// wsHub owns every WebSocket connection of a Server: it counts them per
// user, closes them on Shutdown, and its WaitGroup covers each
// connection's reader (the handler goroutine) and writer.
type wsHub struct {
	upgrader websocket.Upgrader
	timing   wsTiming
	limits   wsLimits
	maxUser  int

	// stop ends every call a connection still makes into the services
	// once Shutdown's deadline has passed.
	stop    context.Context
	stopNow context.CancelFunc

	mu      sync.Mutex
	conns   map[*wsConn]string // → the user the connection counts against ("" before auth)
	perUser map[string]int
	closed  bool
	wg      sync.WaitGroup
}

func (s *Server) newWSHub() *wsHub {
	h := &wsHub{
		timing:  defaultWSTiming,
		limits:  defaultWSLimits,
		maxUser: s.cfg.WSMaxConnsPerUser,
		conns:   map[*wsConn]string{},
		perUser: map[string]int{},
	}
	h.stop, h.stopNow = context.WithCancel(context.Background())
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: h.timing.writeWait,
		// Buffers come from the hijacked HTTP connection (4 KiB) for
		// reads and from a pool for writes, so an idle connection holds
		// no write buffer.
		WriteBufferPool:   &sync.Pool{},
		CheckOrigin:       s.wsOriginAllowed,
		EnableCompression: false, // small JSON frames; compression costs more than it saves
		Error: func(w http.ResponseWriter, r *http.Request, status int, _ error) {
			if status == http.StatusForbidden {
				writeEnvelope(w, *errOriginRefused)
				return
			}
			writeEnvelope(w, *errBadHandshake)
		},
	}
	return h
}

var (
	errOriginRefused = &Error{CodeOriginRefused, "This Origin may not open a WebSocket to this server; add it to the allowed origins"}
	errBadHandshake  = &Error{CodeBadHandshake, "This endpoint speaks WebSocket: send a WebSocket upgrade request"}
	errTooManyConns  = &Error{CodeRateLimited, "Too many open WebSocket connections for this user"}
	errShuttingDown  = &Error{CodeUnavailable, "The server is shutting down"}
)

// add registers a connection before its upgrade; false once Shutdown has
// begun. The caller owns one WaitGroup count until it calls remove.
func (h *wsHub) add(c *wsConn) bool {
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
func (h *wsHub) claim(c *wsConn, user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perUser[user] >= h.maxUser {
		return false
	}
	h.perUser[user]++
	h.conns[c] = user
	return true
}

func (h *wsHub) remove(c *wsConn) {
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

// endUser closes every connection of user, after a logout: each gets a
// logged_out error frame and closes with 4401. It returns how many.
func (h *wsHub) endUser(user string) int {
	h.mu.Lock()
	var cs []*wsConn
	for c, u := range h.conns {
		if u == user {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.closeAfter(closeUnauthorized, "logged out", errorFrame{Type: "error", Code: wsErrLoggedOut,
			Message: "the user logged out: sign in again"})
	}
	return len(cs)
}

// attach records the upgraded connection, so Shutdown can drop it.
func (h *wsHub) attach(c *wsConn, ws *websocket.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c.ws = ws
}

func (h *wsHub) isClosed() bool {
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
func (s *Server) Shutdown(ctx context.Context) error {
	h := s.ws
	h.mu.Lock()
	h.closed = true
	conns := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.closeNow(closeGoingAway, "server shutting down")
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

// wsOriginAllowed is the upgrader's CheckOrigin. A request without Origin
// comes from a non-browser client, which no web page can drive, so it is
// allowed (it still has to authenticate). A browser's Origin must be on
// the allow-list or be the API's own host.
func (s *Server) wsOriginAllowed(r *http.Request) bool {
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
	return s.wsOrigins.allowed(origin)
}

// serveWS upgrades GET /api/v1/ws and runs the connection's reader on
// this goroutine until the connection ends. Everything that can be refused
// with an HTTP status is refused before the upgrade.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	h := s.ws
	if h.isClosed() {
		WriteError(w, r, errShuttingDown)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		WriteError(w, r, errBadHandshake)
		return
	}
	if !s.wsOriginAllowed(r) {
		s.metrics.wsRefused.WithLabelValues("origin").Inc()
		WriteError(w, r, errOriginRefused)
		return
	}
	// Non-browser clients may authenticate on the upgrade request; a bad
	// token is refused here with the usual 401.
	var p auth.Principal
	headerAuth := r.Header.Get("Authorization") != ""
	if headerAuth {
		var err error
		if p, _, err = s.verify(r); err != nil {
			WriteError(w, r, err)
			return
		}
		infoFrom(r.Context()).setUser(p.UserID)
	}
	info := infoFrom(r.Context())
	if info == noInfo {
		info = &requestInfo{id: newRequestID(), log: s.log}
	}
	// The connection outlives this handler (its reader runs on its own
	// goroutine), while the access log reads info when the handler
	// returns: the connection gets its own copy to fill in.
	connInfo := *info
	c := newWSConn(s, &connInfo)
	// Until the connection is handed to its reader goroutine, this
	// function owns it and must release it on every early return.
	handedOff := false
	defer func() {
		if !handedOff {
			c.cancel()
		}
	}()
	if !h.add(c) {
		WriteError(w, r, errShuttingDown)
		return
	}
	defer func() {
		if !handedOff {
			h.remove(c)
		}
	}()
	if headerAuth && !h.claim(c, p.UserID) {
		s.metrics.wsRefused.WithLabelValues("too_many_connections").Inc()
		WriteError(w, r, errTooManyConns)
		return
	}
	if headerAuth {
		// A logout between the check above and the claim missed this
		// connection (endUser closes claimed ones only): check again.
		if _, _, err := s.verify(r); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	info.upgraded = true
	h.attach(c, ws)
	c.markAttached()
	s.metrics.wsActive.Inc()
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
		defer s.metrics.wsActive.Dec()
		if headerAuth {
			c.ready(p)
		}
		c.readLoop()
		c.cleanup()
	}()
}
