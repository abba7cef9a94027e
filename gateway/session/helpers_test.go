package session

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/faultmaven/faultmaven/internal/testclock"
	"github.com/faultmaven/faultmaven/persistence"
	"github.com/faultmaven/faultmaven/persistence/persisttest"
)

// env is a Service on a real Pebble store over an in-memory filesystem that
// survives restart().
type env struct {
	t     testing.TB
	fs    vfs.FS
	store *persistence.Store
	svc   *Service
	cfg   Config
	clock *testclock.Clock
}

func newEnv(t testing.TB, mutate ...func(*Config)) *env {
	t.Helper()
	clock := testclock.New()
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
	store, ks := persisttest.Open(e.t, e.fs, persistence.SpaceSession)
	svc, err := New(ks, e.cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.store, e.svc = store, svc
}

func (e *env) restart() {
	e.t.Helper()
	persisttest.Close(e.t, e.store)
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
