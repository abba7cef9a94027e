package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oklog/ulid/v2"

	"github.com/faultmaven/faultmaven/persistence"
)

// Config configures New. Zero fields take the defaults documented on each.
type Config struct {
	// AccessTTL is the access-token lifetime; default 1h. It must exceed
	// 5 minutes because the extension refreshes once 5 minutes or less are
	// left (contract §2.3): a shorter token would refresh on every request.
	AccessTTL time.Duration
	// RefreshTTL is how long a refresh token stays usable; default 30 days.
	// Each rotation issues a token with a fresh RefreshTTL.
	RefreshTTL time.Duration
	// AllowRegistration opens POST /auth/register to anyone.
	AllowRegistration bool
	// KeyFile is the JWT signing key: created on first start with 32 random
	// bytes (mode 0600, parent directory 0700). Required.
	KeyFile string
	// Argon2 is the password-hashing cost; zero fields take the defaults
	// {Time: 2, MemoryKiB: 19456, Threads: 1, KeyLen: 32, SaltLen: 16}.
	Argon2 Argon2Params
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// minAccessTTL is the extension's proactive-refresh window (contract §2.3).
const minAccessTTL = 5 * time.Minute

func (c *Config) ensureDefaults() {
	if c.AccessTTL == 0 {
		c.AccessTTL = time.Hour
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	c.Argon2 = c.Argon2.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	if c.AccessTTL <= minAccessTTL {
		return fmt.Errorf("auth: config AccessTTL %s must be longer than %s: the extension refreshes when %s or less is left, so it would refresh before every request", c.AccessTTL, minAccessTTL, minAccessTTL)
	}
	if c.RefreshTTL <= 0 {
		return fmt.Errorf("auth: config RefreshTTL %s must be positive", c.RefreshTTL)
	}
	if c.KeyFile == "" {
		return errors.New("auth: config KeyFile must name the JWT signing key file (it is created on first start)")
	}
	return c.Argon2.validate()
}

// numStripes is the number of per-user lock stripes. Users hashing to the
// same stripe only contend on rare writes, never on Verify's cache hits.
const numStripes = 64

// Service manages accounts and tokens. It is safe for concurrent use.
type Service struct {
	ks     *persistence.Keyspace
	cfg    Config
	key    []byte
	parser *jwt.Parser

	// dummyHash is verified against when a login names an unknown user, so
	// that the response takes as long as for a wrong password.
	dummyHash string
	hashSem   chan struct{}

	createMu sync.Mutex // serializes the username uniqueness check with its write
	seed     maphash.Seed
	stripes  [numStripes]sync.Mutex

	cacheMu sync.RWMutex
	cache   map[string]cachedUser // user id → what Verify needs
}

// cachedUser is the part of a user record Verify needs. Entries change only
// under the user's stripe lock, after the matching write is durable.
type cachedUser struct {
	username string
	roles    []string
	epoch    uint64
	active   bool
}

// New opens the auth service on the "auth" keyspace, loading or creating
// the signing key named by cfg.KeyFile.
func New(ks *persistence.Keyspace, cfg Config) (*Service, error) {
	if ks == nil {
		return nil, errors.New("auth: nil keyspace")
	}
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	key, err := loadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	s := &Service{
		ks:      ks,
		cfg:     cfg,
		key:     key,
		parser:  newParser(cfg.Now),
		hashSem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		seed:    maphash.MakeSeed(),
		cache:   make(map[string]cachedUser),
	}
	s.dummyHash = hashPassword(randomToken(16), cfg.Argon2)
	return s, nil
}

// RegistrationOpen reports whether self-service registration is enabled.
func (s *Service) RegistrationOpen() bool { return s.cfg.AllowRegistration }

// AdminExists reports whether any account holds the admin role.
func (s *Service) AdminExists(ctx context.Context) (bool, error) {
	found := false
	err := s.ks.Scan([]byte(prefixUser), false, func(_, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rec userRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("auth: decode user: %w", err)
		}
		if slices.Contains(rec.Roles, RoleAdmin) {
			found = true
			return persistence.ErrStopScan
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("auth: scan users: %w", err)
	}
	return found, nil
}

// CreateUser adds an account (the `user add` CLI). u.Admin grants the admin
// role; so does being the first account ever created.
func (s *Service) CreateUser(ctx context.Context, u NewUser) (User, error) {
	rec, err := s.create(ctx, u, u.Admin)
	if err != nil {
		return User{}, err
	}
	return rec.public(), nil
}

// Register is self-service sign-up: it creates the account (admin if it is
// the first) and signs it in, returning tokens exactly like Login.
func (s *Service) Register(ctx context.Context, u NewUser) (Tokens, error) {
	if !s.cfg.AllowRegistration {
		return Tokens{}, ErrRegistrationClosed
	}
	rec, err := s.create(ctx, u, false)
	if err != nil {
		return Tokens{}, err
	}
	return s.issueTokens(rec.ID)
}

func (s *Service) create(ctx context.Context, u NewUser, admin bool) (userRecord, error) {
	u = normalize(u)
	if err := validateNewUser(u); err != nil {
		return userRecord{}, err
	}
	// Cheap early answer for the common duplicate, before paying for a
	// hash; the authoritative check is repeated under createMu below.
	if _, err := s.userIDByName(u.Username); err == nil {
		return userRecord{}, ErrUserExists
	} else if !errors.Is(err, ErrUserNotFound) {
		return userRecord{}, err
	}
	var phc string
	if err := s.argon(ctx, func() { phc = hashPassword(u.Password, s.cfg.Argon2) }); err != nil {
		return userRecord{}, err
	}

	s.createMu.Lock()
	defer s.createMu.Unlock()
	if _, err := s.userIDByName(u.Username); err == nil {
		return userRecord{}, ErrUserExists
	} else if !errors.Is(err, ErrUserNotFound) {
		return userRecord{}, err
	}
	first, err := s.noUsers()
	if err != nil {
		return userRecord{}, err
	}
	roles := []string{RoleUser}
	if admin || first {
		roles = append(roles, RoleAdmin)
	}
	now := s.cfg.Now().UTC()
	rec := userRecord{
		ID:           newID("usr_", now),
		Username:     u.Username,
		Email:        u.Email,
		DisplayName:  u.DisplayName,
		Roles:        roles,
		PasswordHash: phc,
		Active:       true,
		CreatedAt:    now,
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return userRecord{}, fmt.Errorf("auth: encode user: %w", err)
	}
	b := s.ks.NewBatch()
	if err := errors.Join(
		b.Set(userKey(rec.ID), val),
		b.Set(nameKey(rec.Username), []byte(rec.ID)),
	); err != nil {
		b.Close()
		return userRecord{}, fmt.Errorf("auth: stage user %s: %w", rec.ID, err)
	}
	if err := b.Commit(true); err != nil {
		return userRecord{}, fmt.Errorf("auth: write user %s: %w", rec.ID, err)
	}
	mu := s.stripe(rec.ID)
	mu.Lock()
	s.setCached(rec)
	mu.Unlock()
	return rec, nil
}

// Login checks a username (case-insensitive) and password and starts a new
// refresh family. Unknown user and wrong password are indistinguishable,
// in the error and, as far as we can make it, in timing.
func (s *Service) Login(ctx context.Context, username, password string) (Tokens, error) {
	name := strings.TrimSpace(username)
	if validateUsername(name) != nil || len(password) > maxPassword {
		// Cannot name an account; answering fast reveals nothing about
		// which accounts exist.
		return Tokens{}, ErrInvalidCredentials
	}
	rec, err := s.userByName(name)
	if errors.Is(err, ErrUserNotFound) {
		if err := s.argon(ctx, func() { _, _ = checkPassword(s.dummyHash, password) }); err != nil {
			return Tokens{}, err
		}
		return Tokens{}, ErrInvalidCredentials
	}
	if err != nil {
		return Tokens{}, err
	}
	var ok bool
	var cerr error
	if err := s.argon(ctx, func() { ok, cerr = checkPassword(rec.PasswordHash, password) }); err != nil {
		return Tokens{}, err
	}
	if cerr != nil {
		return Tokens{}, fmt.Errorf("auth: user %s: %w", rec.ID, cerr)
	}
	if !ok || !rec.Active {
		return Tokens{}, ErrInvalidCredentials
	}
	return s.issueTokens(rec.ID)
}

// Verify checks an access token and returns who it belongs to. A cache hit
// does no I/O; the user's record is read once per process lifetime.
func (s *Service) Verify(ctx context.Context, accessToken string) (Principal, error) {
	c, err := s.parseAccess(accessToken)
	if err != nil {
		return Principal{}, err
	}
	cu, err := s.cached(c.Subject)
	if errors.Is(err, ErrUserNotFound) {
		return Principal{}, ErrInvalidToken
	}
	if err != nil {
		return Principal{}, err
	}
	if cu.epoch != c.Epoch || !cu.active {
		return Principal{}, fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	var exp time.Time
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.Time
	}
	return Principal{UserID: c.Subject, Username: cu.username, Roles: slices.Clone(cu.roles), Expires: exp}, nil
}

// Logout revokes every refresh family of the user and bumps the user's
// token epoch, which invalidates all access tokens issued so far. It
// returns the number of refresh families revoked.
func (s *Service) Logout(ctx context.Context, userID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	mu := s.stripe(userID)
	mu.Lock()
	defer mu.Unlock()
	rec, err := s.loadUser(userID)
	if err != nil {
		return 0, err
	}
	b := s.ks.NewBatch()
	n, err := s.revokeFamilies(b, userID, func(familyRecord) bool { return true })
	if err == nil {
		rec.Epoch++
		err = s.stageUser(b, rec)
	}
	if err != nil {
		b.Close()
		return 0, fmt.Errorf("auth: logout %s: %w", userID, err)
	}
	if err := b.Commit(true); err != nil {
		return 0, fmt.Errorf("auth: logout %s: %w", userID, err)
	}
	s.setCached(rec)
	return n, nil
}

// User returns the account with the given id, or ErrUserNotFound.
func (s *Service) User(ctx context.Context, userID string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	rec, err := s.loadUser(userID)
	if err != nil {
		return User{}, err
	}
	return rec.public(), nil
}

// argon runs fn (one Argon2 derivation) holding a semaphore slot, so that a
// burst of logins cannot allocate MemoryKiB per request without bound.
func (s *Service) argon(ctx context.Context, fn func()) error {
	select {
	case s.hashSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSem }()
	fn()
	return nil
}

func (s *Service) stripe(userID string) *sync.Mutex {
	return &s.stripes[maphash.String(s.seed, userID)%numStripes]
}

// cached returns the Verify view of a user, loading it on a miss. The load
// runs under the user's stripe so it cannot overwrite a newer epoch that a
// concurrent Logout has just installed.
func (s *Service) cached(userID string) (cachedUser, error) {
	s.cacheMu.RLock()
	cu, ok := s.cache[userID]
	s.cacheMu.RUnlock()
	if ok {
		return cu, nil
	}
	mu := s.stripe(userID)
	mu.Lock()
	defer mu.Unlock()
	s.cacheMu.RLock()
	cu, ok = s.cache[userID]
	s.cacheMu.RUnlock()
	if ok {
		return cu, nil
	}
	rec, err := s.loadUser(userID)
	if err != nil {
		return cachedUser{}, err
	}
	return s.setCached(rec), nil
}

// setCached must be called with the user's stripe held.
func (s *Service) setCached(rec userRecord) cachedUser {
	cu := cachedUser{username: rec.Username, roles: slices.Clone(rec.Roles), epoch: rec.Epoch, active: rec.Active}
	s.cacheMu.Lock()
	s.cache[rec.ID] = cu
	s.cacheMu.Unlock()
	return cu
}

// Key layout of the "auth" keyspace:
//
//	u/<user id>                  → userRecord (JSON)
//	n/<lower-case username>      → user id
//	r/<hex sha256(token)>        → refreshRecord (JSON)
//	f/<family id>/<hex sha256>   → "" (every token ever issued in the family)
//	uf/<user id>/<family id>     → familyRecord (JSON)
const (
	prefixUser       = "u/"
	prefixName       = "n/"
	prefixRefresh    = "r/"
	prefixFamily     = "f/"
	prefixUserFamily = "uf/"
)

func userKey(id string) []byte     { return []byte(prefixUser + id) }
func nameKey(name string) []byte   { return []byte(prefixName + strings.ToLower(name)) }
func refreshKey(h string) []byte   { return []byte(prefixRefresh + h) }
func familyPrefix(f string) []byte { return []byte(prefixFamily + f + "/") }
func userFamilyPrefix(u string) []byte {
	return []byte(prefixUserFamily + u + "/")
}

// userRecord is the stored account. PasswordHash never leaves the package.
type userRecord struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	Email        string    `json:"email,omitempty"`
	DisplayName  string    `json:"display_name"`
	Roles        []string  `json:"roles"`
	PasswordHash string    `json:"password_hash"`
	Epoch        uint64    `json:"epoch"` // access tokens carrying another epoch are dead
	Active       bool      `json:"active"`
	CreatedAt    time.Time `json:"created_at"`
}

func (r userRecord) public() User {
	return User{
		UserID:      r.ID,
		Username:    r.Username,
		Email:       r.Email,
		DisplayName: r.DisplayName,
		Roles:       slices.Clone(r.Roles),
		IsActive:    r.Active,
		CreatedAt:   r.CreatedAt,
	}
}

func (s *Service) loadUser(id string) (userRecord, error) {
	var rec userRecord
	if id == "" {
		return rec, ErrUserNotFound
	}
	v, err := s.ks.Get(userKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return rec, ErrUserNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("auth: load user %s: %w", id, err)
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("auth: decode user %s: %w", id, err)
	}
	return rec, nil
}

func (s *Service) stageUser(b *persistence.Batch, rec userRecord) error {
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	return b.Set(userKey(rec.ID), val)
}

func (s *Service) userIDByName(name string) (string, error) {
	v, err := s.ks.Get(nameKey(name))
	if errors.Is(err, persistence.ErrNotFound) {
		return "", ErrUserNotFound
	}
	if err != nil {
		return "", fmt.Errorf("auth: look up username: %w", err)
	}
	return string(v), nil
}

func (s *Service) userByName(name string) (userRecord, error) {
	id, err := s.userIDByName(name)
	if err != nil {
		return userRecord{}, err
	}
	return s.loadUser(id)
}

// noUsers reports whether no account exists yet; the caller holds createMu.
func (s *Service) noUsers() (bool, error) {
	empty := true
	err := s.ks.Scan([]byte(prefixName), false, func(_, _ []byte) error {
		empty = false
		return persistence.ErrStopScan
	})
	if err != nil {
		return false, fmt.Errorf("auth: scan usernames: %w", err)
	}
	return empty, nil
}

// newID returns prefix + a lower-case ULID: sortable by creation time, with
// crypto-random entropy so ids are not guessable from one another.
func newID(prefix string, now time.Time) string {
	return prefix + strings.ToLower(ulid.MustNew(ulid.Timestamp(now), rand.Reader).String())
}

// newSessionID names a login session (= refresh family): "lsn_" + 128
// random bits.
func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "lsn_" + hex.EncodeToString(b)
}
