package session

import (
	"errors"
	"regexp"
	"testing"
)

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// FuzzCreateOrResume: arbitrary client-supplied fields never panic, fail
// only with ErrInvalidInput, and what is accepted obeys the rules.
func FuzzCreateOrResume(f *testing.F) {
	e := newEnv(f)
	f.Add("usr_a", "c1", "troubleshooting", 0)
	f.Add("", "", "", -1)
	f.Add("usr_a/x", "a b", "\x00", 1<<62)
	f.Add("u", "é", "t", 480)
	f.Fuzz(func(t *testing.T, userID, clientID, typ string, minutes int) {
		s, _, err := e.svc.CreateOrResume(ctx, userID, clientID, typ, minutes)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
			if clientIDRE.MatchString(clientID) && validateUserID(userID) == nil && validateSessionType(typ) == nil {
				t.Fatalf("valid input rejected: %v", err)
			}
			return
		}
		if clientID != "" && !clientIDRE.MatchString(clientID) {
			t.Fatalf("accepted client id %q", clientID)
		}
		if s.TimeoutMinutes < 60 || s.TimeoutMinutes > 480 {
			t.Fatalf("timeout %d out of bounds", s.TimeoutMinutes)
		}
		if _, err := e.svc.Heartbeat(ctx, userID, s.SessionID); err != nil {
			t.Fatalf("heartbeat of a fresh session: %v", err)
		}
	})
}

// FuzzSessionID: Get and Heartbeat with arbitrary ids never panic.
func FuzzSessionID(f *testing.F) {
	e := newEnv(f)
	f.Add("sess_x")
	f.Add("")
	f.Add("../../u/x")
	f.Fuzz(func(t *testing.T, id string) {
		if _, err := e.svc.Get(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q): %v", id, err)
		}
		if _, err := e.svc.Heartbeat(ctx, "usr_a", id); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("Heartbeat(%q): %v", id, err)
		}
	})
}
