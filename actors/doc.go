// Package actors owns cases: one supervised hollywood actor per active case,
// each a thin shell over a pure state machine whose events are the case's
// durable log in Pebble.
//
// Shape: casemgr (one per node) supervises every case actor. Every request
// for a case goes through casemgr, which activates the case on demand,
// buffers requests while a case is stopping and hands them in order to the
// next incarnation, passivates cases idle for longer than Config.CaseIdle,
// and counts restarts itself: after Config.MaxRestarts panics a case is
// marked degraded and refuses work while the rest of the process goes on.
//
// Concurrency contract: a case actor handles one message at a time and owns
// its state; nothing else mutates it. Requests carry a buffered reply
// channel and a deadline (Config.RequestTimeout); the actor answers each
// exactly once, and a request that panicked is answered with ErrCaseFailed
// before the actor restarts and reloads from Pebble. Every event is written
// with Sync before anyone is told it happened (write-ahead); concurrent cases
// share fsyncs through Pebble's group commit. List and Get read the row
// projection written in the same batch as the events, so they never wake an
// actor. A running turn hands its streamed deltas, which change no state, to
// the case's subscribers itself, in an order the case actor fixes (ADR 0008).
//
// Must not: block a case actor on the network, keep a mutex inside an actor,
// or touch another module's keyspace.
package actors
