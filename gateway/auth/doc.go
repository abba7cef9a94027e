// Package auth owns local accounts and the tokens that prove who a caller is:
// user records and their case-insensitive username index, Argon2id password
// hashes, HS256 access tokens, and rotating opaque refresh tokens (contract
// §2). It persists only in the "auth" keyspace and knows nothing about HTTP;
// the gateway maps the sentinel errors in types.go to statuses.
//
// Tokens. An access token is a short-lived JWT carrying the user's token
// epoch ("ep"). Logout bumps the epoch, which invalidates every access token
// issued before it without a deny list. A refresh token is 32 random bytes
// that the store knows only by SHA-256; each login starts a refresh family,
// each refresh rotates within the family, and presenting a token that was
// already rotated away revokes the whole family, because only a thief or a
// replay would do that.
//
// Concurrency: a Service is safe for concurrent use. User creation is
// serialized by one mutex so that the uniqueness check and the write cannot
// interleave. Everything else that reads and then rewrites a user's state
// (refresh rotation, family revocation, epoch bumps, filling the verify
// cache) runs under that user's lock stripe, so Verify's in-memory cache can
// never be refilled with an epoch older than one Logout already wrote.
// Argon2id runs are bounded by a semaphore of GOMAXPROCS slots, since each
// run holds MemoryKiB of RAM. Every acknowledged write is synced.
//
// Must not: log or persist passwords or raw tokens, accept any JWT algorithm
// but HS256, or touch another module's keyspace.
package auth
