package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegisterValidation(t *testing.T) {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	cases := []struct {
		name   string
		in     NewUser
		want   error
		reason string // substring of the error when want is ErrInvalidInput
	}{
		{"minimal", NewUser{Username: "bob", Password: "12345678"}, nil, ""},
		{"all fields", NewUser{Username: "a.b_c@d-e", Password: goodPassword, Email: "a@b.example", DisplayName: "Ann Bé"}, nil, ""},
		{"username trimmed", NewUser{Username: "  carol  ", Password: goodPassword}, nil, ""},
		{"username 50", NewUser{Username: long(50, "u"), Password: goodPassword}, nil, ""},
		{"username 2", NewUser{Username: "ab", Password: goodPassword}, ErrInvalidInput, "3-50 characters"},
		{"username 51", NewUser{Username: long(51, "u"), Password: goodPassword}, ErrInvalidInput, "3-50 characters"},
		{"username space", NewUser{Username: "al ice", Password: goodPassword}, ErrInvalidInput, "letters, digits"},
		{"username bang", NewUser{Username: "alice!", Password: goodPassword}, ErrInvalidInput, "letters, digits"},
		{"username non-ascii", NewUser{Username: "élan", Password: goodPassword}, ErrInvalidInput, "letters, digits"},
		{"username slash", NewUser{Username: "a/b/c", Password: goodPassword}, ErrInvalidInput, "letters, digits"},
		{"password empty", NewUser{Username: "dave", Password: ""}, ErrInvalidInput, "password"},
		{"password 7", NewUser{Username: "dave", Password: "1234567"}, ErrInvalidInput, "password"},
		{"password 1024", NewUser{Username: "dave", Password: long(1024, "p")}, nil, ""},
		{"password 1025", NewUser{Username: "erin", Password: long(1025, "p")}, ErrInvalidInput, "password"},
		{"email no at", NewUser{Username: "fred", Password: goodPassword, Email: "nope"}, ErrInvalidInput, "email"},
		{"email no domain", NewUser{Username: "fred", Password: goodPassword, Email: "a@"}, ErrInvalidInput, "email"},
		{"email no local", NewUser{Username: "fred", Password: goodPassword, Email: "@b.c"}, ErrInvalidInput, "email"},
		{"email display form", NewUser{Username: "fred", Password: goodPassword, Email: "Fred <f@b.c>"}, ErrInvalidInput, "email"},
		{"email space", NewUser{Username: "fred", Password: goodPassword, Email: "f red@b.c"}, ErrInvalidInput, "email"},
		{"email 255", NewUser{Username: "fred", Password: goodPassword, Email: long(251, "x") + "@b.c"}, ErrInvalidInput, "at most 254"},
		{"email 254", NewUser{Username: "fred", Password: goodPassword, Email: long(250, "x") + "@b.c"}, nil, ""},
		{"display 100 runes", NewUser{Username: "gina", Password: goodPassword, DisplayName: long(100, "é")}, nil, ""},
		{"display 101 runes", NewUser{Username: "hank", Password: goodPassword, DisplayName: long(101, "é")}, ErrInvalidInput, "at most 100"},
		{"display control", NewUser{Username: "hank", Password: goodPassword, DisplayName: "bell\x07"}, ErrInvalidInput, "control"},
		{"display bad utf8", NewUser{Username: "hank", Password: goodPassword, DisplayName: "\xff"}, ErrInvalidInput, "UTF-8"},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.svc.Register(context.Background(), tc.in)
			wantErr(t, "Register", err, tc.want)
			if tc.want != nil {
				if !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("error %q lacks reason %q", err, tc.reason)
				}
				return
			}
			if tok.User == nil || tok.User.Username != strings.TrimSpace(tc.in.Username) {
				t.Fatalf("user = %+v", tok.User)
			}
		})
	}
}

func TestRegisterDefaultsAndTokens(t *testing.T) {
	e := newEnv(t)
	tok := e.register("Alice")
	u := tok.User
	switch {
	case u == nil:
		t.Fatal("no user in tokens")
	case !strings.HasPrefix(u.UserID, "usr_") || len(u.UserID) != 4+26 || strings.ToLower(u.UserID) != u.UserID:
		t.Errorf("user id %q is not usr_ + lower-case ULID", u.UserID)
	case u.DisplayName != "Alice":
		t.Errorf("display name = %q, want the username", u.DisplayName)
	case !u.IsActive:
		t.Error("new user not active")
	}
	if tok.TokenType != "bearer" || tok.ExpiresIn != 3600 || tok.RefreshExpiresIn != 30*24*3600 {
		t.Errorf("token meta = %q %d %d", tok.TokenType, tok.ExpiresIn, tok.RefreshExpiresIn)
	}
	if !strings.HasPrefix(tok.SessionID, "lsn_") || !strings.HasPrefix(tok.RefreshToken, "fmr_") {
		t.Errorf("session %q refresh %q", tok.SessionID, tok.RefreshToken[:4])
	}
	p, err := e.svc.Verify(context.Background(), tok.AccessToken)
	wantErr(t, "Verify", err, nil)
	if p.UserID != u.UserID || p.Username != "Alice" {
		t.Errorf("principal = %+v", p)
	}
	got, err := e.svc.User(context.Background(), u.UserID)
	wantErr(t, "User", err, nil)
	if got.Username != "Alice" || !slices.Equal(got.Roles, u.Roles) {
		t.Errorf("User = %+v", got)
	}
	_, err = e.svc.User(context.Background(), "usr_nobody")
	wantErr(t, "User(unknown)", err, ErrUserNotFound)
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.register("Alice")
	cases := []struct {
		name, user, pass string
		want             error
	}{
		{"ok", "Alice", goodPassword, nil},
		{"case-insensitive username", "aLiCe", goodPassword, nil},
		{"padded username", " alice ", goodPassword, nil},
		{"wrong password", "alice", goodPassword + "x", ErrInvalidCredentials},
		{"password case matters", "alice", strings.ToUpper(goodPassword), ErrInvalidCredentials},
		{"empty password", "alice", "", ErrInvalidCredentials},
		{"unknown user", "mallory", goodPassword, ErrInvalidCredentials},
		{"invalid username", "a!", goodPassword, ErrInvalidCredentials},
		{"oversized password", "alice", strings.Repeat("x", 2000), ErrInvalidCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.svc.Login(context.Background(), tc.user, tc.pass)
			wantErr(t, "Login", err, tc.want)
			if tc.want != nil {
				if tok.AccessToken != "" || tok.RefreshToken != "" {
					t.Fatal("tokens returned with an error")
				}
				return
			}
			if _, err := e.svc.Verify(context.Background(), tok.AccessToken); err != nil {
				t.Fatalf("Verify after login: %v", err)
			}
		})
	}
}

func TestLoginCanceledContext(t *testing.T) {
	e := newEnv(t)
	e.register("alice")
	// Fill every hashing slot so the login has to wait, then cancel it.
	for i := 0; i < cap(e.svc.hashSem); i++ {
		e.svc.hashSem <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.svc.Login(ctx, "alice", goodPassword)
	wantErr(t, "Login", err, context.Canceled)
}

func TestDuplicateUsername(t *testing.T) {
	cases := []struct {
		second string
		want   error
	}{
		{"alice", ErrUserExists},
		{"Alice", ErrUserExists},
		{"ALICE", ErrUserExists},
		{" alice ", ErrUserExists},
		{"alice2", nil},
		{"alic", nil},
	}
	for _, tc := range cases {
		t.Run(tc.second, func(t *testing.T) {
			e := newEnv(t)
			e.register("Alice")
			_, err := e.svc.Register(context.Background(), NewUser{Username: tc.second, Password: goodPassword})
			wantErr(t, "Register", err, tc.want)
			_, err = e.svc.CreateUser(context.Background(), NewUser{Username: tc.second, Password: goodPassword})
			if tc.want == nil {
				// The second registration succeeded, so the CLI now sees a duplicate too.
				wantErr(t, "CreateUser", err, ErrUserExists)
			} else {
				wantErr(t, "CreateUser", err, tc.want)
			}
		})
	}
}

func TestConcurrentRegistrationOneWins(t *testing.T) {
	e := newEnv(t)
	const rounds, n = 10, 16
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{}) // release all at once to widen the race
		for i := range n {
			// Vary the case so the race is on the normalized index entry,
			// and mix both creation paths.
			name := []byte(fmt.Sprintf("racer%d", round))
			name[i%5] -= 'a' - 'A'
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				u := NewUser{Username: string(name), Password: goodPassword}
				if i%2 == 0 {
					_, errs[i] = e.svc.Register(context.Background(), u)
				} else {
					_, errs[i] = e.svc.CreateUser(context.Background(), u)
				}
			}()
		}
		close(start)
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrUserExists):
				t.Errorf("round %d, registration %d: %v", round, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d registrations won, want exactly 1", round, wins)
		}
	}
	users := 0
	err := e.svc.ks.Scan([]byte(prefixUser), false, func(_, _ []byte) error { users++; return nil })
	wantErr(t, "scan", err, nil)
	if users != rounds {
		t.Fatalf("%d user records stored, want %d", users, rounds)
	}
}

func TestFirstUserIsAdmin(t *testing.T) {
	ctx := context.Background()
	admin := []string{RoleUser, RoleAdmin}
	user := []string{RoleUser}
	cases := []struct {
		name  string
		steps []func(e *env) (User, error)
		roles [][]string
	}{
		{
			name: "register",
			steps: []func(e *env) (User, error){
				func(e *env) (User, error) { return *e.register("first").User, nil },
				func(e *env) (User, error) { return *e.register("second").User, nil },
			},
			roles: [][]string{admin, user},
		},
		{
			name: "cli first, then register",
			steps: []func(e *env) (User, error){
				func(e *env) (User, error) {
					return e.svc.CreateUser(ctx, NewUser{Username: "root", Password: goodPassword})
				},
				func(e *env) (User, error) { return *e.register("second").User, nil },
				func(e *env) (User, error) {
					return e.svc.CreateUser(ctx, NewUser{Username: "ops", Password: goodPassword, Admin: true})
				},
			},
			roles: [][]string{admin, user, admin},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			has, err := e.svc.AdminExists(ctx)
			wantErr(t, "AdminExists", err, nil)
			if has {
				t.Fatal("AdminExists on an empty store")
			}
			for i, step := range tc.steps {
				u, err := step(e)
				wantErr(t, fmt.Sprintf("step %d", i), err, nil)
				if !slices.Equal(u.Roles, tc.roles[i]) {
					t.Fatalf("step %d: roles %v, want %v", i, u.Roles, tc.roles[i])
				}
			}
			has, err = e.svc.AdminExists(ctx)
			wantErr(t, "AdminExists", err, nil)
			if !has {
				t.Fatal("AdminExists = false after creating an admin")
			}
		})
	}
}

func TestRegistrationClosed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowRegistration = false })
	if e.svc.RegistrationOpen() {
		t.Fatal("RegistrationOpen with AllowRegistration=false")
	}
	_, err := e.svc.Register(context.Background(), NewUser{Username: "alice", Password: goodPassword})
	wantErr(t, "Register", err, ErrRegistrationClosed)
	// The CLI path stays open: it is how the operator creates accounts.
	u, err := e.svc.CreateUser(context.Background(), NewUser{Username: "alice", Password: goodPassword})
	wantErr(t, "CreateUser", err, nil)
	if !u.IsAdmin() {
		t.Fatal("first CLI user is not admin")
	}
	_, err = e.svc.Login(context.Background(), "alice", goodPassword)
	wantErr(t, "Login", err, nil)
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of New's error; "" means success
	}{
		{"defaults", func(*Config) {}, ""},
		{"access 5m", func(c *Config) { c.AccessTTL = 5 * time.Minute }, "AccessTTL"},
		{"access 1m", func(c *Config) { c.AccessTTL = time.Minute }, "AccessTTL"},
		{"access 6m", func(c *Config) { c.AccessTTL = 6 * time.Minute }, ""},
		{"refresh negative", func(c *Config) { c.RefreshTTL = -time.Hour }, "RefreshTTL"},
		{"no key file", func(c *Config) { c.KeyFile = "" }, "KeyFile"},
		{"argon key too short", func(c *Config) { c.Argon2.KeyLen = 8 }, "Argon2.KeyLen"},
		{"argon memory too small", func(c *Config) { c.Argon2.MemoryKiB = 4 }, "Argon2.MemoryKiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t) // a valid env supplies the keyspace and key path
			cfg := e.cfg
			tc.mutate(&cfg)
			_, err := New(e.svc.ks, cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want one naming %s", err, tc.want)
			}
		})
	}
	if _, err := New(nil, Config{KeyFile: "x"}); err == nil {
		t.Fatal("New(nil keyspace) succeeded")
	}
}
