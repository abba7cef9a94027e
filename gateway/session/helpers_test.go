package session

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/faultmaven/faultmaven/persistence"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is a Service on a real Pebble store over an in-memory filesystem that
// survives restart().
type env struct {
	t     testing.TB
	fs    vfs.FS
	store *persistence.Store
	svc   *Service
	cfg   Config
	clock *fakeClock
}

func newEnv(t testing.TB, mutate ...func(*Config)) *env {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg := Config{Now: clock.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	e := &env{t: t, fs: vfs.NewMem(), cfg: cfg, clock: clock}
	e.open()
	t.Cleanup(func() { _ = e.store.Close() })
	return e
}

func (e *env) open() {
	e.t.Helper()
	store, err := persistence.Open("data", &persistence.Options{FS: e.fs, NoBlobs: true})
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	ks, err := store.Keyspace(persistence.SpaceSession)
	if err != nil {
		e.t.Fatalf("keyspace: %v", err)
	}
	svc, err := New(ks, e.cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.store, e.svc = store, svc
}

func (e *env) restart() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatalf("close store: %v", err)
	}
	e.open()
}

func wantErr(t testing.TB, what string, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("%s: unexpected error %v", what, got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("%s: error = %v, want %v", what, got, want)
	}
}
