// Package persisttest opens stores for tests of the services that keep
// their state in one keyspace (gateway/auth, gateway/session): on Pebble's
// in-memory file system, which outlives a Close so that closing and
// reopening on the same FS simulates a process restart.
package persisttest

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/faultmaven/faultmaven/persistence"
)

// Open opens the store "data" on fs without a blob directory and returns
// it with the keyspace space. Any failure ends the test.
func Open(tb testing.TB, fs vfs.FS, space string) (*persistence.Store, *persistence.Keyspace) {
	tb.Helper()
	store, err := persistence.Open("data", &persistence.Options{FS: fs, NoBlobs: true})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	ks, err := store.Keyspace(space)
	if err != nil {
		_ = store.Close()
		tb.Fatalf("keyspace %s: %v", space, err)
	}
	return store, ks
}

// Close closes store, ending the test on failure. Closing and opening
// again on the same fs is what a restart leaves on disk, with every
// in-memory cache gone.
func Close(tb testing.TB, store *persistence.Store) {
	tb.Helper()
	if err := store.Close(); err != nil {
		tb.Fatalf("close store: %v", err)
	}
}
