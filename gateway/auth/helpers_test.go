package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/faultmaven/faultmaven/internal/testclock"
	"github.com/faultmaven/faultmaven/persistence"
	"github.com/faultmaven/faultmaven/persistence/persisttest"
)

// tinyArgon keeps each hash well under a millisecond so the suite stays fast
// under -race; production cost is exercised by none of the assertions.
var tinyArgon = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

const goodPassword = "correct horse battery"

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
	cfg := Config{
		AllowRegistration: true,
		KeyFile:           filepath.Join(t.TempDir(), "keys", "jwt.key"),
		Argon2:            tinyArgon,
		Now:               clock.Now,
	}
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
	store, ks := persisttest.Open(e.t, e.fs, persistence.SpaceAuth)
	svc, err := New(ks, e.cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.store, e.svc = store, svc
}

// restart simulates a process restart: close the store, reopen it and build
// a fresh Service (empty caches) with the same config.
func (e *env) restart() {
	e.t.Helper()
	persisttest.Close(e.t, e.store)
	e.open()
}

func (e *env) register(name string) Tokens {
	e.t.Helper()
	tok, err := e.svc.Register(context.Background(), NewUser{Username: name, Password: goodPassword})
	if err != nil {
		e.t.Fatalf("Register(%q): %v", name, err)
	}
	return tok
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
