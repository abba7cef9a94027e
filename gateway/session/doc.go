// Package session owns client sessions, the source of the X-Session-Id
// header (contract §3): creating or resuming a session for a (user,
// client_id) pair, heartbeats that slide its expiry, and adoption of an
// anonymous session by the user who logs in on the same browser. It stores
// only in the "sess" keyspace and knows nothing about HTTP or tokens; the
// caller passes an already verified user id ("" when anonymous).
//
// Expiry is computed, not scheduled: a session is live while now is before
// LastActivity + timeout. An expired session is still readable (Get reports
// Status "expired") until Sweep deletes it after a retention period, and is
// never resumed or heartbeated back to life.
//
// Concurrency: a Service is safe for concurrent use. Every read-modify-write
// (create, resume, heartbeat, adoption, eviction, sweep) runs under one
// mutex, so the client and per-user indexes always agree with the session
// records; Get reads without it. Each write is one synced batch.
//
// Must not: touch another module's keyspace, start goroutines (the owner
// calls Sweep on its own schedule), or trust a user id it was not given by
// the authenticated caller.
package session
