// Package gateway is FaultMaven's HTTP layer: the chi router, the middleware
// every request passes through, the client-visible error envelope, the REST
// handlers of the copilot contract (reference/copilot-contract.md) for
// discovery, local auth, client sessions, cases, turns (with their job
// polling) and evidence (uploaded files, the case timeline), the admin
// egress audit, plus /healthz, /readyz and /metrics. It mounts the
// WebSocket protocol v1 at /api/v1/ws (docs/protocol.md), which lives in
// the subpackage gateway/ws.
//
// It owns no state of its own. Accounts and tokens belong to gateway/auth,
// client sessions to gateway/session, cases to package actors, evidence
// files to actors/evidence; the gateway reaches them only through the small
// consumer interfaces in deps.go, turns HTTP into calls on them, and turns
// their sentinel errors into one {"detail","code"} envelope through the
// single table in errors.go. It is also where modules are joined:
// NewEvidenceSource adapts the evidence store to what the case actors need,
// and websocket.go hands the ws.Hub the services, metrics, request
// bookkeeping and error mapping it declares in ws.Deps (ws never imports
// gateway; its errors are mapped in errors.go like everyone's).
// The evidence store knows no users, so every evidence call comes after the
// caller's ownership of the case was checked.
//
// Request pipeline, outermost first: request id → client IP → access log and
// latency histogram → panic recovery → CORS → per-IP rate limit → JSON body
// cap → routing. Authenticated routes add bearer-token verification and a
// per-user rate limit; routes under /api/v1/cases/{case_id} add an ownership
// check that answers 404 for a case the caller does not own (IDOR), before
// any body is read. Later packages (WebSocket, turns, evidence) mount their
// routes on Router, AuthRouter or CaseRouter to get the same treatment.
//
// Concurrency: a Server is safe for concurrent use once built. Routes must
// all be mounted before Handler starts serving (chi's tree is not
// synchronised). Per-request state (request id, principal, log fields) lives
// in the request context and is written only by middleware on the request's
// own goroutine. The rate limiters and metrics are safe for concurrent use.
// The gateway starts no goroutines of its own; the WebSocket hub (package
// ws) starts each connection's reader and writer and owns them, and
// Server.Shutdown waits for them. It must run after the http.Server
// stopped accepting (hijacked connections are not the http.Server's to
// close) and before the case system shuts down.
//
// Must not: log the Authorization header, tokens, query strings, bodies,
// file names or contents, or WebSocket frame contents; hold an upload in
// memory (multipart bodies are streamed part by part into the evidence
// store, never parsed with ParseMultipartForm); block a case actor in a
// Subscriber's Deliver; show an internal error's text to a client; answer
// 401 for anything but a missing or bad bearer token, or use the word
// "session" in a 401 (the extension would then drop its session instead of
// logging out); read or write any keyspace.
package gateway
