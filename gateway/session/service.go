package session

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/faultmaven/faultmaven/persistence"
)

// Status values of Session.Status.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
)

// DefaultSessionType is used when CreateOrResume is given none; it is what
// the extension always sends (contract §3.1).
const DefaultSessionType = "troubleshooting"

// Input limits.
const (
	maxClientID    = 128
	maxSessionType = 64
	maxUserID      = 128
	maxSessionID   = 128
)

// expiredRetention is how long an expired session stays readable (so Get
// can say "expired" rather than "not found") before Sweep deletes it.
const expiredRetention = 24 * time.Hour

// Config configures New. Zero fields take the defaults documented on each.
type Config struct {
	DefaultTimeout time.Duration // default 180m (what the extension sends)
	MinTimeout     time.Duration // default 60m; shorter requests are raised to it
	MaxTimeout     time.Duration // default 480m; longer requests are lowered to it
	MaxPerUser     int           // live sessions per user; default 50
	Now            func() time.Time
}

func (c *Config) ensureDefaults() {
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = 180 * time.Minute
	}
	if c.MinTimeout == 0 {
		c.MinTimeout = 60 * time.Minute
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = 480 * time.Minute
	}
	if c.MaxPerUser == 0 {
		c.MaxPerUser = 50
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	if c.MinTimeout < time.Minute {
		return fmt.Errorf("session: config MinTimeout %s must be at least 1m", c.MinTimeout)
	}
	if c.MinTimeout > c.DefaultTimeout || c.DefaultTimeout > c.MaxTimeout {
		return fmt.Errorf("session: config timeouts must satisfy MinTimeout (%s) <= DefaultTimeout (%s) <= MaxTimeout (%s)",
			c.MinTimeout, c.DefaultTimeout, c.MaxTimeout)
	}
	if c.MaxPerUser < 1 {
		return fmt.Errorf("session: config MaxPerUser %d must be at least 1", c.MaxPerUser)
	}
	return nil
}

// Service manages sessions. It is safe for concurrent use.
type Service struct {
	ks  *persistence.Keyspace
	cfg Config
	// Timeouts in whole minutes, the unit of the API.
	defMin, minMin, maxMin int

	mu sync.Mutex // guards every read-modify-write of records and indexes
}

// New opens the session service on the "sess" keyspace.
func New(ks *persistence.Keyspace, cfg Config) (*Service, error) {
	if ks == nil {
		return nil, errors.New("session: nil keyspace")
	}
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Service{
		ks:     ks,
		cfg:    cfg,
		defMin: int(cfg.DefaultTimeout / time.Minute),
		minMin: int(cfg.MinTimeout / time.Minute),
		maxMin: int(cfg.MaxTimeout / time.Minute),
	}, nil
}

// CreateOrResume returns the live session of (userID, clientID) with
// resumed=true, touching its activity, or else creates one. An unknown or
// expired client id is never an error: the extension only needs some
// session (contract §3.1). userID "" creates an anonymous session. An empty
// clientID gets a generated one; timeoutMinutes 0 means the default and any
// other value is clamped to [MinTimeout, MaxTimeout].
func (s *Service) CreateOrResume(ctx context.Context, userID, clientID, sessionType string, timeoutMinutes int) (Session, bool, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, false, err
	}
	if err := validateUserID(userID); err != nil {
		return Session{}, false, err
	}
	if clientID == "" {
		clientID = newClientID()
	} else if err := validateClientID(clientID); err != nil {
		return Session{}, false, err
	}
	if sessionType == "" {
		sessionType = DefaultSessionType
	} else if err := validateSessionType(sessionType); err != nil {
		return Session{}, false, err
	}
	timeout := s.clamp(timeoutMinutes)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().UTC()

	if rec, ok, err := s.liveForClient(userID, clientID, now); err != nil {
		return Session{}, false, err
	} else if ok {
		rec.LastActivity = now
		b := s.ks.NewBatch()
		if err := stageRecord(b, rec); err != nil {
			b.Close()
			return Session{}, false, err
		}
		if err := b.Commit(true); err != nil {
			return Session{}, false, fmt.Errorf("session: resume %s: %w", rec.ID, err)
		}
		return rec.view(now), true, nil
	}

	rec := record{
		ID:             "sess_" + strings.ToLower(ulid.MustNew(ulid.Timestamp(now), rand.Reader).String()),
		UserID:         userID,
		ClientID:       clientID,
		SessionType:    sessionType,
		TimeoutMinutes: timeout,
		CreatedAt:      now,
		LastActivity:   now,
	}
	b := s.ks.NewBatch()
	var err error
	if userID != "" {
		err = s.stageCap(b, userID, rec.ID, now)
	}
	if err == nil {
		// Staged after the cap: an old session of this client that the cap
		// deletes must not take the new index entry with it.
		err = s.stageOwned(b, rec)
	}
	if err != nil {
		b.Close()
		return Session{}, false, fmt.Errorf("session: create: %w", err)
	}
	if err := b.Commit(true); err != nil {
		return Session{}, false, fmt.Errorf("session: create %s: %w", rec.ID, err)
	}
	return rec.view(now), false, nil
}

// Heartbeat marks the session active now, sliding its expiry. It returns
// ErrNotFound when the session is missing, expired, or owned by a user other
// than userID. A logged-in user heartbeating an anonymous session adopts it:
// the panel keeps the session it created before login (contract §3.1).
func (s *Service) Heartbeat(ctx context.Context, userID, sessionID string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	if err := validateUserID(userID); err != nil {
		return Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().UTC()
	rec, err := s.load(sessionID)
	if err != nil {
		return Session{}, err
	}
	if !rec.live(now) || (rec.UserID != "" && rec.UserID != userID) {
		return Session{}, ErrNotFound
	}
	rec.LastActivity = now
	b := s.ks.NewBatch()
	if rec.UserID == "" && userID != "" {
		err = s.stageAdopt(b, &rec, userID, now)
	} else {
		err = stageRecord(b, rec)
	}
	if err != nil {
		b.Close()
		return Session{}, fmt.Errorf("session: heartbeat %s: %w", rec.ID, err)
	}
	if err := b.Commit(true); err != nil {
		return Session{}, fmt.Errorf("session: heartbeat %s: %w", rec.ID, err)
	}
	return rec.view(now), nil
}

// Get returns the session, live or expired, or ErrNotFound.
func (s *Service) Get(ctx context.Context, sessionID string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	rec, err := s.load(sessionID)
	if err != nil {
		return Session{}, err
	}
	return rec.view(s.cfg.Now().UTC()), nil
}

// Sweep deletes sessions that expired more than a day ago and returns how
// many it deleted. The owner calls it periodically; without it, anonymous
// sessions (which no per-user cap bounds) would accumulate.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().UTC()
	var doomed []record
	err := s.ks.Scan([]byte(prefixSession), false, func(_, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rec record
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode session: %w", err)
		}
		if rec.purgeable(now) {
			doomed = append(doomed, rec)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("session: sweep: %w", err)
	}
	if len(doomed) == 0 {
		return 0, nil
	}
	b := s.ks.NewBatch()
	for _, rec := range doomed {
		if err := s.stageDelete(b, rec); err != nil {
			b.Close()
			return 0, fmt.Errorf("session: sweep: %w", err)
		}
	}
	if err := b.Commit(true); err != nil {
		return 0, fmt.Errorf("session: sweep: %w", err)
	}
	return len(doomed), nil
}

func (s *Service) clamp(minutes int) int {
	switch {
	case minutes == 0:
		return s.defMin
	case minutes < s.minMin:
		return s.minMin
	case minutes > s.maxMin:
		return s.maxMin
	}
	return minutes
}

// liveForClient returns the live session the client index names for
// (userID, clientID), if any. The caller holds s.mu.
func (s *Service) liveForClient(userID, clientID string, now time.Time) (record, bool, error) {
	v, err := s.ks.Get(clientKey(userID, clientID))
	if errors.Is(err, persistence.ErrNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("session: look up client: %w", err)
	}
	rec, err := s.load(string(v))
	if errors.Is(err, ErrNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, err
	}
	// The index is rewritten on adoption, so a mismatch means a stale
	// entry; treat it as absent rather than hand over someone's session.
	if !rec.live(now) || rec.UserID != userID || rec.ClientID != clientID {
		return record{}, false, nil
	}
	return rec, true, nil
}

// stageAdopt moves an anonymous session to userID: its client index entry
// moves under the user and the user's cap is enforced with it counted. The
// record itself is written too, so the caller sets its fields first.
func (s *Service) stageAdopt(b *persistence.Batch, rec *record, userID string, now time.Time) error {
	if err := s.unindexClient(b, *rec); err != nil {
		return err
	}
	if err := s.stageCap(b, userID, rec.ID, now); err != nil {
		return err
	}
	rec.UserID = userID
	return s.stageOwned(b, *rec)
}

// stageOwned writes the record and points its client and user indexes at it.
func (s *Service) stageOwned(b *persistence.Batch, rec record) error {
	if err := stageRecord(b, rec); err != nil {
		return err
	}
	if err := b.Set(clientKey(rec.UserID, rec.ClientID), []byte(rec.ID)); err != nil {
		return err
	}
	if rec.UserID == "" {
		return nil
	}
	return b.Set(userSessionKey(rec.UserID, rec.ID), nil)
}

// stageCap makes room for keep, a session about to be staged for userID,
// so that the user has at most MaxPerUser live sessions with it: the least
// recently active others are evicted. It also drops the user's long-expired
// sessions, which bounds the per-user index without waiting for Sweep.
// Callers stage keep's own writes after this, because its deletions read
// index entries from the store and a later write in the batch wins.
func (s *Service) stageCap(b *persistence.Batch, userID, keep string, now time.Time) error {
	prefix := userSessionKey(userID, "")
	var live []record
	err := s.ks.Scan(prefix, false, func(k, _ []byte) error {
		id := string(k[len(prefix):])
		if id == keep {
			return nil
		}
		rec, err := s.load(id)
		if errors.Is(err, ErrNotFound) {
			return b.Delete(k) // dangling index entry
		}
		if err != nil {
			return err
		}
		switch {
		case rec.purgeable(now):
			return s.stageDelete(b, rec)
		case rec.live(now):
			live = append(live, rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	excess := len(live) + 1 - s.cfg.MaxPerUser
	if excess <= 0 {
		return nil
	}
	// Oldest activity first; ties broken by id, which sorts by creation.
	sortByActivity(live)
	for _, rec := range live[:excess] {
		if err := s.stageDelete(b, rec); err != nil {
			return err
		}
	}
	return nil
}

// stageDelete removes a session and the index entries that name it.
func (s *Service) stageDelete(b *persistence.Batch, rec record) error {
	if err := b.Delete(sessionKey(rec.ID)); err != nil {
		return err
	}
	if err := s.unindexClient(b, rec); err != nil {
		return err
	}
	if rec.UserID == "" {
		return nil
	}
	return b.Delete(userSessionKey(rec.UserID, rec.ID))
}

// unindexClient deletes the client index entry of rec if it still points at
// rec; a newer session of the same client may own it by now.
func (s *Service) unindexClient(b *persistence.Batch, rec record) error {
	key := clientKey(rec.UserID, rec.ClientID)
	v, err := s.ks.Get(key)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if string(v) != rec.ID {
		return nil
	}
	return b.Delete(key)
}

func (s *Service) load(id string) (record, error) {
	var rec record
	if id == "" || len(id) > maxSessionID {
		return rec, ErrNotFound
	}
	v, err := s.ks.Get(sessionKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("session: load %s: %w", id, err)
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("session: decode %s: %w", id, err)
	}
	return rec, nil
}

func stageRecord(b *persistence.Batch, rec record) error {
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode session %s: %w", rec.ID, err)
	}
	return b.Set(sessionKey(rec.ID), val)
}

func validateUserID(id string) error {
	if len(id) > maxUserID {
		return fmt.Errorf("%w: user id too long", ErrInvalidInput)
	}
	for _, r := range id {
		// "/" separates key components; a user id containing it could
		// reach into another user's index range.
		if r == '/' || unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("%w: malformed user id", ErrInvalidInput)
		}
	}
	return nil
}

func validateClientID(id string) error {
	if len(id) < 1 || len(id) > maxClientID {
		return fmt.Errorf("%w: client_id must be 1-%d characters", ErrInvalidInput, maxClientID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("%w: client_id may contain only letters, digits, - and _", ErrInvalidInput)
		}
	}
	return nil
}

func validateSessionType(t string) error {
	if !utf8.ValidString(t) || utf8.RuneCountInString(t) > maxSessionType {
		return fmt.Errorf("%w: session_type must be at most %d characters", ErrInvalidInput, maxSessionType)
	}
	for _, r := range t {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: session_type must not contain control characters", ErrInvalidInput)
		}
	}
	return nil
}

// newClientID returns a random UUIDv4, the form the extension itself uses.
func newClientID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Key layout of the "sess" keyspace:
//
//	s/<session id>             → record (JSON)
//	c/<user id>/<client id>    → session id (user id "" when anonymous)
//	u/<user id>/<session id>   → "" (owned sessions, for the per-user cap)
const (
	prefixSession = "s/"
	prefixClient  = "c/"
	prefixUser    = "u/"
)

func sessionKey(id string) []byte { return []byte(prefixSession + id) }

func clientKey(userID, clientID string) []byte {
	return []byte(prefixClient + userID + "/" + clientID)
}

func userSessionKey(userID, sessionID string) []byte {
	return []byte(prefixUser + userID + "/" + sessionID)
}

// record is the stored session. Status and ExpiresAt are derived from the
// clock when read, so they can never disagree with LastActivity.
type record struct {
	ID             string    `json:"id"`
	UserID         string    `json:"user_id,omitempty"`
	ClientID       string    `json:"client_id"`
	SessionType    string    `json:"session_type"`
	TimeoutMinutes int       `json:"timeout_minutes"`
	CreatedAt      time.Time `json:"created_at"`
	LastActivity   time.Time `json:"last_activity"`
}

func (r record) expiresAt() time.Time {
	return r.LastActivity.Add(time.Duration(r.TimeoutMinutes) * time.Minute)
}

func (r record) live(now time.Time) bool { return now.Before(r.expiresAt()) }

// purgeable reports whether the session expired long enough ago that
// nobody needs to be told "expired" rather than "not found".
func (r record) purgeable(now time.Time) bool {
	return !now.Before(r.expiresAt().Add(expiredRetention))
}

func (r record) view(now time.Time) Session {
	status := StatusActive
	if !r.live(now) {
		status = StatusExpired
	}
	return Session{
		SessionID:      r.ID,
		UserID:         r.UserID,
		ClientID:       r.ClientID,
		SessionType:    r.SessionType,
		Status:         status,
		TimeoutMinutes: r.TimeoutMinutes,
		CreatedAt:      r.CreatedAt,
		LastActivity:   r.LastActivity,
		ExpiresAt:      r.expiresAt(),
	}
}

// sortByActivity orders least recently active first; ties go to the older
// id (ids sort by creation time).
func sortByActivity(recs []record) {
	slices.SortFunc(recs, func(a, b record) int {
		if c := a.LastActivity.Compare(b.LastActivity); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
