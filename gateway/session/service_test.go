package session

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

// create is CreateOrResume that fails the test on error.
func (e *env) create(userID, clientID string) (Session, bool) {
	e.t.Helper()
	s, resumed, err := e.svc.CreateOrResume(ctx, userID, clientID, "", 0)
	if err != nil {
		e.t.Fatalf("CreateOrResume(%q, %q): %v", userID, clientID, err)
	}
	return s, resumed
}

func TestCreate(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	s, resumed := e.create("usr_a", "client-1")
	if resumed {
		t.Fatal("first call reported resumed")
	}
	if !regexp.MustCompile(`^sess_[0-9a-z]{26}$`).MatchString(s.SessionID) {
		t.Errorf("session id %q is not sess_ + lower-case ULID", s.SessionID)
	}
	want := Session{
		SessionID: s.SessionID, UserID: "usr_a", ClientID: "client-1", SessionType: "troubleshooting",
		Status: "active", TimeoutMinutes: 180, CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(180 * time.Minute),
	}
	if !sameSession(s, want) {
		t.Fatalf("created %+v\nwant     %+v", s, want)
	}
	got, err := e.svc.Get(ctx, s.SessionID)
	wantErr(t, "Get", err, nil)
	if !sameSession(got, want) {
		t.Fatalf("Get = %+v\nwant  %+v", got, want)
	}
	e.restart()
	got, err = e.svc.Get(ctx, s.SessionID)
	wantErr(t, "Get after restart", err, nil)
	if !sameSession(got, want) {
		t.Fatalf("Get after restart = %+v", got)
	}
	_, err = e.svc.Get(ctx, "sess_missing")
	wantErr(t, "Get missing", err, ErrNotFound)
	_, err = e.svc.Get(ctx, "")
	wantErr(t, "Get empty", err, ErrNotFound)
}

func sameSession(a, b Session) bool {
	return a.SessionID == b.SessionID && a.UserID == b.UserID && a.ClientID == b.ClientID &&
		a.SessionType == b.SessionType && a.Status == b.Status && a.TimeoutMinutes == b.TimeoutMinutes &&
		a.CreatedAt.Equal(b.CreatedAt) && a.LastActivity.Equal(b.LastActivity) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestGeneratedClientID(t *testing.T) {
	e := newEnv(t)
	a, _ := e.create("usr_a", "")
	b, _ := e.create("usr_a", "")
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a.ClientID) || a.ClientID == b.ClientID || a.SessionID == b.SessionID {
		t.Fatalf("generated client ids %q, %q", a.ClientID, b.ClientID)
	}
	// The generated id works for resuming like a supplied one.
	c, resumed := e.create("usr_a", a.ClientID)
	if !resumed || c.SessionID != a.SessionID {
		t.Fatalf("resume by generated client id: %+v resumed=%v", c, resumed)
	}
}

func TestResume(t *testing.T) {
	cases := []struct {
		name          string
		user, client  string // of the second call; the first is ("usr_a", "c1")
		advance       time.Duration
		wantResumed   bool
		oldStatusWant string // "" means purged
	}{
		{"same user and client", "usr_a", "c1", time.Minute, true, "active"},
		{"just before expiry", "usr_a", "c1", 180*time.Minute - time.Second, true, "active"},
		{"at expiry", "usr_a", "c1", 180 * time.Minute, false, "expired"},
		// Past the retention period the create that replaces it also purges it.
		{"long after expiry", "usr_a", "c1", 48 * time.Hour, false, ""},
		{"other client", "usr_a", "c2", time.Minute, false, "active"},
		{"other user", "usr_b", "c1", time.Minute, false, "active"},
		{"anonymous, same client", "", "c1", time.Minute, false, "active"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			first, _ := e.create("usr_a", "c1")
			e.clock.Advance(tc.advance)
			second, resumed := e.create(tc.user, tc.client)
			if resumed != tc.wantResumed || (second.SessionID == first.SessionID) != tc.wantResumed {
				t.Fatalf("resumed=%v same id=%v, want %v", resumed, second.SessionID == first.SessionID, tc.wantResumed)
			}
			if resumed && !second.LastActivity.Equal(e.clock.Now()) {
				t.Fatalf("resume did not touch LastActivity: %v", second.LastActivity)
			}
			if second.Status != StatusActive {
				t.Fatalf("returned session status %q", second.Status)
			}
			old, err := e.svc.Get(ctx, first.SessionID)
			switch {
			case tc.oldStatusWant == "":
				wantErr(t, "Get purged first", err, ErrNotFound)
			case err != nil:
				t.Fatalf("Get first: %v", err)
			case old.Status != tc.oldStatusWant:
				t.Fatalf("first session status %q, want %q", old.Status, tc.oldStatusWant)
			}
			// And a third call resumes whatever the second returned.
			third, resumed := e.create(tc.user, tc.client)
			if !resumed || third.SessionID != second.SessionID {
				t.Fatalf("third call: resumed=%v id %s, want %s", resumed, third.SessionID, second.SessionID)
			}
		})
	}
}

func TestConcurrentCreateOrResumeOneSession(t *testing.T) {
	e := newEnv(t)
	const n = 16
	ids := make([]string, n)
	resumed := make([]bool, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s, r, err := e.svc.CreateOrResume(ctx, "usr_a", "c1", "", 0)
			if err != nil {
				t.Errorf("CreateOrResume: %v", err)
			}
			ids[i], resumed[i] = s.SessionID, r
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("concurrent calls got different sessions: %v", ids)
		}
		if !resumed[i] {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d calls created a session, want 1", created)
	}
}

func TestHeartbeat(t *testing.T) {
	cases := []struct {
		name    string
		owner   string // creator of the session
		caller  string
		advance time.Duration
		id      string // overrides the session id when set
		want    error
	}{
		{name: "owner", owner: "usr_a", caller: "usr_a", advance: time.Hour},
		{name: "owner just before expiry", owner: "usr_a", caller: "usr_a", advance: 180*time.Minute - time.Second},
		{name: "expired", owner: "usr_a", caller: "usr_a", advance: 180 * time.Minute, want: ErrNotFound},
		{name: "other user", owner: "usr_a", caller: "usr_b", want: ErrNotFound},
		{name: "anonymous caller on owned session", owner: "usr_a", caller: "", want: ErrNotFound},
		{name: "anonymous on anonymous", owner: "", caller: ""},
		{name: "missing", owner: "usr_a", caller: "usr_a", id: "sess_nope", want: ErrNotFound},
		{name: "oversized id", owner: "usr_a", caller: "usr_a", id: strings.Repeat("s", 500), want: ErrNotFound},
		{name: "bad caller id", owner: "usr_a", caller: "usr_a/x", want: ErrInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s, _ := e.create(tc.owner, "c1")
			id := s.SessionID
			if tc.id != "" {
				id = tc.id
			}
			e.clock.Advance(tc.advance)
			hb, err := e.svc.Heartbeat(ctx, tc.caller, id)
			wantErr(t, "Heartbeat", err, tc.want)
			if tc.want != nil {
				got, err := e.svc.Get(ctx, s.SessionID)
				wantErr(t, "Get", err, nil)
				if !got.LastActivity.Equal(s.LastActivity) || got.UserID != tc.owner {
					t.Fatalf("refused heartbeat changed the session: %+v", got)
				}
				return
			}
			now := e.clock.Now()
			if !hb.LastActivity.Equal(now) || !hb.ExpiresAt.Equal(now.Add(180*time.Minute)) || hb.Status != StatusActive {
				t.Fatalf("heartbeat result %+v", hb)
			}
			got, err := e.svc.Get(ctx, id)
			wantErr(t, "Get", err, nil)
			if !sameSession(got, hb) {
				t.Fatalf("stored %+v\nreturned %+v", got, hb)
			}
		})
	}
}

func TestAnonymousAdoption(t *testing.T) {
	e := newEnv(t)
	anon, _ := e.create("", "c1")
	e.clock.Advance(time.Minute)

	hb, err := e.svc.Heartbeat(ctx, "usr_a", anon.SessionID)
	wantErr(t, "adopting heartbeat", err, nil)
	if hb.UserID != "usr_a" || hb.SessionID != anon.SessionID {
		t.Fatalf("after adoption: %+v", hb)
	}
	e.restart()
	got, err := e.svc.Get(ctx, anon.SessionID)
	wantErr(t, "Get", err, nil)
	if got.UserID != "usr_a" {
		t.Fatalf("adoption not persisted: %+v", got)
	}
	// Now it is usr_a's: others and anonymous callers are refused.
	_, err = e.svc.Heartbeat(ctx, "usr_b", anon.SessionID)
	wantErr(t, "other user", err, ErrNotFound)
	_, err = e.svc.Heartbeat(ctx, "", anon.SessionID)
	wantErr(t, "anonymous", err, ErrNotFound)
	// The client index moved with it.
	s, resumed := e.create("usr_a", "c1")
	if !resumed || s.SessionID != anon.SessionID {
		t.Fatalf("owner resume after adoption: resumed=%v %s", resumed, s.SessionID)
	}
	s, resumed = e.create("", "c1")
	if resumed || s.SessionID == anon.SessionID {
		t.Fatal("anonymous create resumed an adopted session")
	}
}

func TestTimeoutClamp(t *testing.T) {
	cases := []struct{ in, want int }{
		{0, 180}, {1, 60}, {-5, 60}, {59, 60}, {60, 60}, {61, 61}, {200, 200},
		{480, 480}, {481, 480}, {1 << 40, 480},
	}
	e := newEnv(t)
	for _, tc := range cases {
		s, _, err := e.svc.CreateOrResume(ctx, "", "", "", tc.in)
		wantErr(t, "CreateOrResume", err, nil)
		if s.TimeoutMinutes != tc.want || !s.ExpiresAt.Equal(s.LastActivity.Add(time.Duration(tc.want)*time.Minute)) {
			t.Errorf("timeout %d → %d (expires %v), want %d", tc.in, s.TimeoutMinutes, s.ExpiresAt, tc.want)
		}
	}
}

func TestCapEvictsLeastRecentlyActive(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 3 })
	var ids []string
	for _, c := range []string{"c1", "c2", "c3"} {
		s, _ := e.create("usr_a", c)
		ids = append(ids, s.SessionID)
		e.clock.Advance(time.Minute)
	}
	other, _ := e.create("usr_b", "c1")
	// c1 becomes the most recently active, leaving c2 the least.
	_, err := e.svc.Heartbeat(ctx, "usr_a", ids[0])
	wantErr(t, "Heartbeat", err, nil)
	e.clock.Advance(time.Minute)

	s4, _ := e.create("usr_a", "c4")
	live := map[string]error{ids[0]: nil, ids[1]: ErrNotFound, ids[2]: nil, s4.SessionID: nil, other.SessionID: nil}
	for id, want := range live {
		_, err := e.svc.Get(ctx, id)
		wantErr(t, "Get "+id, err, want)
	}
	// The evicted session's client gets a fresh session, which evicts the
	// next least recently active (c3).
	s5, resumed := e.create("usr_a", "c2")
	if resumed || s5.SessionID == ids[1] {
		t.Fatal("evicted session was resumed")
	}
	_, err = e.svc.Get(ctx, ids[2])
	wantErr(t, "Get c3", err, ErrNotFound)

	// Adoption counts against the cap too.
	anon, _ := e.create("", "c9")
	_, err = e.svc.Heartbeat(ctx, "usr_a", anon.SessionID)
	wantErr(t, "adopt", err, nil)
	_, err = e.svc.Get(ctx, ids[0])
	wantErr(t, "Get c1 after adoption", err, ErrNotFound)
	if n := e.countUser("usr_a"); n != 3 {
		t.Fatalf("usr_a has %d indexed sessions, want 3", n)
	}
}

func TestCapIgnoresExpiredAndAnonymous(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPerUser = 2 })
	old, _ := e.create("usr_a", "c1")
	e.clock.Advance(4 * time.Hour) // old expires
	a, _ := e.create("usr_a", "c2")
	b, _ := e.create("usr_a", "c3")
	for _, id := range []string{a.SessionID, b.SessionID} {
		_, err := e.svc.Get(ctx, id)
		wantErr(t, "live session", err, nil)
	}
	got, err := e.svc.Get(ctx, old.SessionID)
	wantErr(t, "expired session kept for reporting", err, nil)
	if got.Status != StatusExpired {
		t.Fatalf("status %q", got.Status)
	}
	// Anonymous sessions are distinct browsers, not one user: no cap.
	var anon []string
	for range 5 {
		s, _ := e.create("", "")
		anon = append(anon, s.SessionID)
	}
	for _, id := range anon {
		_, err := e.svc.Get(ctx, id)
		wantErr(t, "anonymous session", err, nil)
	}
}

func (e *env) countUser(userID string) int {
	n := 0
	err := e.svc.ks.Scan(userSessionKey(userID, ""), false, func(_, _ []byte) error { n++; return nil })
	wantErr(e.t, "scan", err, nil)
	return n
}

func TestInvalidInput(t *testing.T) {
	cases := []struct {
		name, user, client, typ string
		want                    error
	}{
		{"ok uuid", "usr_a", "0b7e6c1a-4a7e-4d2b-9b1e-2f1c3d4e5f60", "", nil},
		{"client 128", "usr_a", strings.Repeat("a", 128), "", nil},
		{"client underscore", "usr_a", "a_b-C9", "", nil},
		{"client 129", "usr_a", strings.Repeat("a", 129), "", ErrInvalidInput},
		{"client space", "usr_a", "a b", "", ErrInvalidInput},
		{"client slash", "usr_a", "a/b", "", ErrInvalidInput},
		{"client dot", "usr_a", "a.b", "", ErrInvalidInput},
		{"client unicode", "usr_a", "é", "", ErrInvalidInput},
		{"client nul", "usr_a", "a\x00", "", ErrInvalidInput},
		{"type 64", "usr_a", "c", strings.Repeat("é", 64), nil},
		{"type 65", "usr_a", "c", strings.Repeat("t", 65), ErrInvalidInput},
		{"type control", "usr_a", "c", "a\nb", ErrInvalidInput},
		{"type bad utf8", "usr_a", "c", "\xff", ErrInvalidInput},
		{"user slash", "usr_a/b", "c", "", ErrInvalidInput},
		{"user too long", strings.Repeat("u", 129), "c", "", ErrInvalidInput},
	}
	e := newEnv(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _, err := e.svc.CreateOrResume(ctx, tc.user, tc.client, tc.typ, 0)
			wantErr(t, "CreateOrResume", err, tc.want)
			if tc.want == nil && (s.ClientID != tc.client || (tc.typ != "" && s.SessionType != tc.typ)) {
				t.Fatalf("session %+v", s)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	gone, _ := e.create("usr_a", "c1")
	goneAnon, _ := e.create("", "c1")
	e.clock.Advance(180*time.Minute + 24*time.Hour)
	// usr_b, so that creating these does not purge usr_a's old session
	// on the way (stageCap does that) and leaves it to Sweep.
	recent, _ := e.create("usr_b", "c2")
	e.clock.Advance(4 * time.Hour) // recent expired, within retention
	live, _ := e.create("usr_b", "c3")

	n, err := e.svc.Sweep(ctx)
	wantErr(t, "Sweep", err, nil)
	if n != 2 {
		t.Fatalf("Sweep deleted %d, want 2", n)
	}
	want := map[string]error{gone.SessionID: ErrNotFound, goneAnon.SessionID: ErrNotFound, recent.SessionID: nil, live.SessionID: nil}
	for id, w := range want {
		_, err := e.svc.Get(ctx, id)
		wantErr(t, "Get "+id, err, w)
	}
	var clients int
	wantErr(t, "scan", e.svc.ks.Scan([]byte(prefixClient), false, func(_, _ []byte) error { clients++; return nil }), nil)
	if clients != 2 || e.countUser("usr_a") != 0 || e.countUser("usr_b") != 2 {
		t.Fatalf("indexes after sweep: %d client entries, %d+%d user entries; want 2, 0+2",
			clients, e.countUser("usr_a"), e.countUser("usr_b"))
	}
	if n, err := e.svc.Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("second Sweep = %d, %v", n, err)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"min above default", func(c *Config) { c.MinTimeout = 200 * time.Minute }, "MinTimeout"},
		{"default above max", func(c *Config) { c.DefaultTimeout = 500 * time.Minute }, "DefaultTimeout"},
		{"min under a minute", func(c *Config) { c.MinTimeout = time.Second }, "MinTimeout"},
		{"negative cap", func(c *Config) { c.MaxPerUser = -1 }, "MaxPerUser"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
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
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestCanceledContext(t *testing.T) {
	e := newEnv(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err := e.svc.CreateOrResume(c, "usr_a", "c1", "", 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateOrResume with canceled ctx: %v", err)
	}
}
