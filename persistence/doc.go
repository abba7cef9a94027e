// Package persistence owns the node's durable state: one Pebble database per
// data directory and a content-addressed blob store beside it.
//
// Every module (auth, sessions, cases, evidence, knowledge, jobs, audit) gets a
// Keyspace confined to its own key prefix. A keyspace can be claimed once per
// Store, so a module cannot read or write another module's keys; modules talk
// to each other only through their exported Go APIs. An architecture test in
// this package enforces that no other package imports Pebble directly.
//
// Concurrency: Store, Keyspace and BlobStore are safe for concurrent use.
// Writes made with Sync are durable when the call returns (Pebble group-commits
// concurrent synced writes into one WAL fsync). Values returned by Get and Scan
// callbacks are copies the caller owns.
//
// Must not: hold references to Pebble iterators or values beyond a call, or
// accept a user-supplied path anywhere (blob names are server-computed
// SHA-256 digests).
package persistence
