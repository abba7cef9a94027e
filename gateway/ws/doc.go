// Package ws is FaultMaven's WebSocket gateway: protocol v1 at
// GET /api/v1/ws, documented in docs/protocol.md. A Hub upgrades the
// request, authenticates the connection (a bearer token on the upgrade
// or an auth frame first), decodes client frames (auth, subscribe,
// unsubscribe, turn, cancel, ping), turns them into calls on the case
// system, and writes back acks, error frames and the case actors' frames
// (events, subscribed, turn_started, delta, turn_done), coalescing deltas
// for a client that falls behind.
//
// It owns the open connections and nothing else. Package gateway mounts
// the Hub on its router and hands it, through Deps, everything it uses:
// token verification, the case service, attachment lookup in the
// evidence store, the Prometheus series, the origin allow-list, the
// mapping of service errors to error frames (the gateway's one error
// table), and the HTTP side of the upgrade request (request id, bearer
// auth, access log, error envelope). This package does not import
// gateway; its refusals before the upgrade are the sentinel errors
// ErrShuttingDown, ErrBadHandshake, ErrOriginRefused and ErrTooManyConns,
// which the gateway answers in its envelope.
//
// Concurrency: a Hub is safe for concurrent use. Each connection has one
// reader goroutine (started by ServeHTTP once the upgrade is done; it
// makes every call into the services) and at most one writer goroutine,
// which runs only while frames are queued; an idle connection keeps just
// its reader and a ping timer. Both are owned by the Hub, whose WaitGroup
// Shutdown waits for. Shutdown must run after the http.Server stopped
// accepting (hijacked connections are not the http.Server's to close) and
// before the case system shuts down. Case actors reach a connection only
// through Deliver, a non-blocking enqueue into a bounded queue: a queue
// that overflows closes the connection with 4008, and the client resumes
// with since_seq.
//
// Must not: block a case actor in Deliver; add an allocation, goroutine,
// channel or lock per frame on the path from a client frame to its ack or
// from a case frame to the socket; log tokens or frame contents; show an
// internal error's text to a client; let a connection outlive its access
// token or its user's logout (EndUser).
package ws
