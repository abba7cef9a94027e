package auth

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"unicode/utf8"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and
// nothing but a token we signed may verify.
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	tok := e.register("alice")
	f.Add(tok.AccessToken)
	f.Add(tok.RefreshToken)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.")
	f.Add(tamper(tok.AccessToken))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := e.svc.Verify(context.Background(), s)
		if err == nil && s != tok.AccessToken {
			// Any other accepted string must at least name our user (JWT
			// base64 decoding is lenient about trailing bits, so a few
			// re-encodings of the same token are legitimately valid).
			if p.UserID != tok.User.UserID {
				t.Fatalf("Verify accepted %q as %+v", s, p)
			}
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Verify(%q) error %v is not ErrInvalidToken", s, err)
		}
	})
}

// FuzzRefresh: arbitrary refresh tokens never panic and never succeed.
func FuzzRefresh(f *testing.F) {
	e := newEnv(f)
	e.register("alice")
	f.Add("")
	f.Add("fmr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("fmr_\x00")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := e.svc.Refresh(context.Background(), s); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("Refresh(%q) = %v, want ErrInvalidToken", s, err)
		}
	})
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{3,50}$`)

// FuzzValidateUsername checks the validator against an independent
// statement of the rule.
func FuzzValidateUsername(f *testing.F) {
	for _, s := range []string{"", "ab", "abc", "al ice", "a.b_c@d-e", "élan", "x\x00y", "ABC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := validateUsername(s)
		if want := usernameRE.MatchString(s); (err == nil) != want {
			t.Fatalf("validateUsername(%q) = %v, regexp says valid=%v", s, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("error %v does not wrap ErrInvalidInput", err)
		}
	})
}

func FuzzValidateEmail(f *testing.F) {
	for _, s := range []string{"", "a@b.c", "a@", "@b", "A <a@b.c>", "\"a b\"@c.d", "a@b@c", "a@[127.0.0.1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validateEmail(s) != nil || s == "" {
			return
		}
		if len(s) > maxEmail || !utf8.ValidString(s) {
			t.Fatalf("accepted %q", s)
		}
		at := 0
		for _, r := range s {
			if r <= ' ' || r == 0x7f {
				t.Fatalf("accepted %q with space or control character", s)
			}
			if r == '@' {
				at++
			}
		}
		if at != 1 {
			t.Fatalf("accepted %q with %d @", s, at)
		}
	})
}

func FuzzValidateDisplayName(f *testing.F) {
	for _, s := range []string{"", "Ann", "bell\x07", "\xff", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validateDisplayName(s) == nil && (!utf8.ValidString(s) || utf8.RuneCountInString(s) > maxDisplayName) {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzParsePHC: stored hashes are ours, but a corrupted record must fail
// cleanly and never ask for an unbounded Argon2 run.
func FuzzParsePHC(f *testing.F) {
	f.Add(hashPassword("hunter2hunter2", tinyArgon))
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, _, _, err := parsePHC(s)
		if err != nil {
			return
		}
		if p.validate() != nil || p.Time == 0 || p.Threads == 0 {
			t.Fatalf("parsePHC accepted out-of-bounds params %+v from %q", p, s)
		}
	})
}
