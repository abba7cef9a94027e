package auth

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestRefreshRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	t1 := e.register("alice")
	e.clock.Advance(10 * time.Minute)
	t2, err := e.svc.Refresh(ctx, t1.RefreshToken)
	wantErr(t, "Refresh 1", err, nil)
	if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if t2.SessionID != t1.SessionID {
		t.Fatalf("session id changed on refresh: %q → %q", t1.SessionID, t2.SessionID)
	}
	if t2.TokenType != "bearer" || t2.ExpiresIn != 3600 || t2.User == nil || t2.User.UserID != t1.User.UserID {
		t.Fatalf("refresh response = %+v", t2)
	}
	for _, at := range []string{t1.AccessToken, t2.AccessToken} {
		if _, err := e.svc.Verify(ctx, at); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	t3, err := e.svc.Refresh(ctx, t2.RefreshToken)
	wantErr(t, "Refresh 2", err, nil)
	if t3.RefreshToken == t2.RefreshToken {
		t.Fatal("second refresh did not rotate")
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	first := e.register("alice")
	other, err := e.svc.Login(ctx, "alice", goodPassword) // a second device: its own family
	wantErr(t, "Login", err, nil)

	second, err := e.svc.Refresh(ctx, first.RefreshToken)
	wantErr(t, "Refresh", err, nil)
	_, err = e.svc.Refresh(ctx, first.RefreshToken) // replay of the rotated token
	wantErr(t, "reuse", err, ErrInvalidToken)
	_, err = e.svc.Refresh(ctx, second.RefreshToken) // the legitimate successor dies with its family
	wantErr(t, "successor after reuse", err, ErrInvalidToken)
	_, err = e.svc.Refresh(ctx, first.RefreshToken) // and the replayed one stays dead
	wantErr(t, "reuse again", err, ErrInvalidToken)

	_, err = e.svc.Refresh(ctx, other.RefreshToken)
	wantErr(t, "other family", err, nil)
}

func TestConcurrentRefreshOfOneToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tok := e.register("alice")
	const n = 4
	var wg sync.WaitGroup
	results := make([]Tokens, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.svc.Refresh(ctx, tok.RefreshToken)
		}()
	}
	wg.Wait()
	wins := 0
	var winner Tokens
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = results[i]
		case !errors.Is(err, ErrInvalidToken):
			t.Fatalf("refresh %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent refreshes of one token succeeded, want 1", wins)
	}
	// The losers were replays, so the winner's family is revoked too.
	_, err := e.svc.Refresh(ctx, winner.RefreshToken)
	wantErr(t, "winner after replays", err, ErrInvalidToken)
}

func TestRefreshRejects(t *testing.T) {
	e := newEnv(t)
	tok := e.register("alice")
	for _, bad := range []string{
		"",
		"garbage",
		tok.AccessToken,
		"fmr_",
		"fmr_" + strings.Repeat("A", 43), // right shape, never issued
		strings.Replace(tok.RefreshToken, "fmr_", "xyz_", 1), // wrong prefix
		tok.RefreshToken + "A",
		tok.RefreshToken[:len(tok.RefreshToken)-1] + "!",
	} {
		_, err := e.svc.Refresh(context.Background(), bad)
		wantErr(t, "Refresh("+bad+")", err, ErrInvalidToken)
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		advance   time.Duration
		access    error
		refresh   error
		beforeRef func(e *env, tok Tokens) Tokens
	}{
		{name: "fresh", advance: 0},
		{name: "access just alive", advance: time.Hour - time.Second},
		{name: "access expired", advance: time.Hour, access: ErrInvalidToken},
		{name: "refresh just alive", advance: 30*24*time.Hour - time.Second, access: ErrInvalidToken},
		{name: "refresh expired", advance: 30 * 24 * time.Hour, access: ErrInvalidToken, refresh: ErrInvalidToken},
		{
			// Rotation slides the refresh expiry: refreshed on day 20, the
			// new token outlives the original's day-30 deadline.
			name: "rotation slides refresh expiry", advance: 40 * 24 * time.Hour, access: ErrInvalidToken,
			beforeRef: func(e *env, tok Tokens) Tokens {
				e.clock.Advance(20 * 24 * time.Hour)
				next, err := e.svc.Refresh(ctx, tok.RefreshToken)
				wantErr(e.t, "Refresh day 20", err, nil)
				e.clock.Advance(-20 * 24 * time.Hour)
				return next
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tok := e.register("alice")
			if tc.beforeRef != nil {
				tok = tc.beforeRef(e, tok)
			}
			e.clock.Advance(tc.advance)
			_, err := e.svc.Verify(ctx, tok.AccessToken)
			wantErr(t, "Verify", err, tc.access)
			_, err = e.svc.Refresh(ctx, tok.RefreshToken)
			wantErr(t, "Refresh", err, tc.refresh)
		})
	}
}

func TestExpiredFamiliesArePruned(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.register("alice")
	for range 3 {
		_, err := e.svc.Login(ctx, "alice", goodPassword)
		wantErr(t, "Login", err, nil)
	}
	e.clock.Advance(31 * 24 * time.Hour)
	_, err := e.svc.Login(ctx, "alice", goodPassword)
	wantErr(t, "Login", err, nil)
	var families, tokens int
	wantErr(t, "scan", e.svc.ks.Scan([]byte(prefixUserFamily), false, func(_, _ []byte) error { families++; return nil }), nil)
	wantErr(t, "scan", e.svc.ks.Scan([]byte(prefixRefresh), false, func(_, _ []byte) error { tokens++; return nil }), nil)
	if families != 1 || tokens != 1 {
		t.Fatalf("after pruning: %d families, %d tokens; want 1 and 1", families, tokens)
	}
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a1 := e.register("alice")
	a2, err := e.svc.Login(ctx, "alice", goodPassword)
	wantErr(t, "Login", err, nil)
	b := e.register("bob")
	uid := a1.User.UserID

	n, err := e.svc.Logout(ctx, uid)
	wantErr(t, "Logout", err, nil)
	if n != 2 {
		t.Fatalf("Logout revoked %d families, want 2", n)
	}
	for _, tok := range []Tokens{a1, a2} {
		_, err = e.svc.Verify(ctx, tok.AccessToken)
		wantErr(t, "Verify after logout", err, ErrInvalidToken)
		_, err = e.svc.Refresh(ctx, tok.RefreshToken)
		wantErr(t, "Refresh after logout", err, ErrInvalidToken)
	}
	// Another user is untouched.
	_, err = e.svc.Verify(ctx, b.AccessToken)
	wantErr(t, "Verify bob", err, nil)
	_, err = e.svc.Refresh(ctx, b.RefreshToken)
	wantErr(t, "Refresh bob", err, nil)

	// Logging in again works, and the logout survives a restart.
	fresh, err := e.svc.Login(ctx, "alice", goodPassword)
	wantErr(t, "Login after logout", err, nil)
	e.restart()
	_, err = e.svc.Verify(ctx, a1.AccessToken)
	wantErr(t, "old token after restart", err, ErrInvalidToken)
	_, err = e.svc.Verify(ctx, fresh.AccessToken)
	wantErr(t, "new token after restart", err, nil)

	_, err = e.svc.Logout(ctx, "usr_nobody")
	wantErr(t, "Logout unknown", err, ErrUserNotFound)
}

// A Verify that misses the cache while Logout runs must never leave the
// pre-logout epoch in the cache.
func TestVerifyRacingLogout(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tok := e.register("alice")
	for i := range 50 {
		tok2, err := e.svc.Login(ctx, "alice", goodPassword)
		wantErr(t, "Login", err, nil)
		e.svc.cacheMu.Lock()
		clear(e.svc.cache) // force Verify to load from the store
		e.svc.cacheMu.Unlock()
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; _, _ = e.svc.Verify(ctx, tok2.AccessToken) }()
		go func() {
			defer wg.Done()
			<-start
			if _, err := e.svc.Logout(ctx, tok.User.UserID); err != nil {
				t.Errorf("Logout: %v", err)
			}
		}()
		close(start)
		wg.Wait()
		if _, err := e.svc.Verify(ctx, tok2.AccessToken); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("round %d: token valid after Logout returned (err %v)", i, err)
		}
	}
}

// The deterministic version of the race above: a cache fill must wait for
// the user's stripe, which Logout holds from reading the epoch until the
// cache has the new one. The 50 ms window is only a chance for a broken
// fill to finish early; the correct code waits however long it takes.
func TestVerifyCacheFillWaitsForUserLock(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tok := e.register("alice")
	uid := tok.User.UserID
	e.svc.cacheMu.Lock()
	clear(e.svc.cache)
	e.svc.cacheMu.Unlock()

	mu := e.svc.stripe(uid)
	mu.Lock()
	done := make(chan error, 1)
	go func() { _, err := e.svc.Verify(ctx, tok.AccessToken); done <- err }()
	select {
	case err := <-done:
		mu.Unlock()
		t.Fatalf("Verify filled the cache without the user's lock (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Do what Logout does while holding the stripe: persist a new epoch,
	// then publish it.
	rec, err := e.svc.loadUser(uid)
	wantErr(t, "loadUser", err, nil)
	rec.Epoch++
	b := e.svc.ks.NewBatch()
	wantErr(t, "stage", e.svc.stageUser(b, rec), nil)
	wantErr(t, "commit", b.Commit(true), nil)
	e.svc.setCached(rec)
	mu.Unlock()
	wantErr(t, "Verify after epoch bump", <-done, ErrInvalidToken)
}

// signWith mints a token with arbitrary method, key and claims, for the
// forgeries Verify must refuse.
func signWith(t *testing.T, m jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tok := e.register("alice")
	now := e.clock.Now()
	claims := func(mut func(*accessClaims)) *accessClaims {
		c := &accessClaims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: issuer, Subject: tok.User.UserID, ID: "j",
				IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
			},
			Typ: typAccess,
		}
		if mut != nil {
			mut(c)
		}
		return c
	}
	key := e.svc.key
	otherKey := bytes.Repeat([]byte{7}, 32)
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"control: well-formed forgery with our key is accepted", signWith(t, jwt.SigningMethodHS256, key, claims(nil)), nil},
		{"empty", "", ErrInvalidToken},
		{"garbage", "not a jwt", ErrInvalidToken},
		{"three dots", "a.b.c", ErrInvalidToken},
		{"oversized", strings.Repeat("a", maxTokenBytes+1), ErrInvalidToken},
		{"alg none", signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), ErrInvalidToken},
		{"HS256 header, signature stripped", strings.Join(strings.Split(signWith(t, jwt.SigningMethodHS256, key, claims(nil)), ".")[:2], ".") + ".", ErrInvalidToken},
		{"HS256 with another key", signWith(t, jwt.SigningMethodHS256, otherKey, claims(nil)), ErrInvalidToken},
		{"HS512 with our key", signWith(t, jwt.SigningMethodHS512, key, claims(nil)), ErrInvalidToken},
		{"HS384 with our key", signWith(t, jwt.SigningMethodHS384, key, claims(nil)), ErrInvalidToken},
		{"refresh token as access token", tok.RefreshToken, ErrInvalidToken},
		{"typ refresh", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.Typ = "refresh" })), ErrInvalidToken},
		{"typ missing", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.Typ = "" })), ErrInvalidToken},
		{"wrong issuer", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.Issuer = "evil" })), ErrInvalidToken},
		{"no exp", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.ExpiresAt = nil })), ErrInvalidToken},
		{"issued in the future", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })), ErrInvalidToken},
		{"no subject", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.Subject = "" })), ErrInvalidToken},
		{"unknown subject", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.Subject = "usr_ghost" })), ErrInvalidToken},
		{"future epoch", signWith(t, jwt.SigningMethodHS256, key, claims(func(c *accessClaims) { c.Epoch = 1 })), ErrInvalidToken},
		{"tampered payload", tamper(tok.AccessToken), ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Verify(ctx, tc.token)
			wantErr(t, "Verify", err, tc.want)
		})
	}
}

// tamper flips one character of the payload, keeping it valid base64url.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// Verify must answer from memory once a user is cached: with the store
// closed, any Pebble access panics, which this test reports as a failure.
func TestVerifyHotPathAvoidsStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	tok := e.register("alice")
	e.restart() // empty cache: the first Verify may read the store
	_, err := e.svc.Verify(ctx, tok.AccessToken)
	wantErr(t, "warm-up Verify", err, nil)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Verify touched the closed store: %v", r)
			}
		}()
		for range 3 {
			_, err = e.svc.Verify(ctx, tok.AccessToken)
			wantErr(t, "cached Verify", err, nil)
		}
	}()
}

func TestKeyFileCreatedAndReused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	st, err := os.Stat(e.cfg.KeyFile)
	wantErr(t, "stat key", err, nil)
	if st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("key file mode %04o size %d, want 0600 and 32", st.Mode().Perm(), st.Size())
	}
	dst, err := os.Stat(filepath.Dir(e.cfg.KeyFile))
	wantErr(t, "stat key dir", err, nil)
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %04o, want 0700", dst.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(e.cfg.KeyFile), ".jwt-key-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left behind: %v", leftovers)
	}
	before, _ := os.ReadFile(e.cfg.KeyFile)

	tok := e.register("alice")
	e.restart()
	after, _ := os.ReadFile(e.cfg.KeyFile)
	if !bytes.Equal(before, after) {
		t.Fatal("key file rewritten on restart")
	}
	p, err := e.svc.Verify(ctx, tok.AccessToken)
	wantErr(t, "Verify after restart", err, nil)
	if p.Username != "alice" || !p.IsAdmin() {
		t.Fatalf("principal after restart = %+v", p)
	}
	_, err = e.svc.Refresh(ctx, tok.RefreshToken)
	wantErr(t, "Refresh after restart", err, nil)
}

func TestKeyFileRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  []string // substrings of New's error
	}{
		{"group readable", func(t *testing.T, p string) { writeKey(t, p, 32, 0o640) }, []string{"chmod 600", "0640"}},
		{"world readable", func(t *testing.T, p string) { writeKey(t, p, 32, 0o604) }, []string{"chmod 600"}},
		{"too short", func(t *testing.T, p string) { writeKey(t, p, 16, 0o600) }, []string{"16 bytes"}},
		{"directory", func(t *testing.T, p string) {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, []string{"not a regular file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "jwt.key")
			tc.setup(t, path)
			_, err := loadOrCreateKey(path)
			if err == nil {
				t.Fatal("insecure or broken key file accepted")
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// And through New, as an operator would hit it.
	e := newEnv(t)
	if err := os.Chmod(e.cfg.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(e.svc.ks, e.cfg); err == nil || !strings.Contains(err.Error(), "chmod 600 "+e.cfg.KeyFile) {
		t.Fatalf("New with a 0644 key: %v", err)
	}
}

func writeKey(t *testing.T, path string, n int, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{1}, n), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
}
