package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	issuer        = "faultmaven"
	typAccess     = "access"
	keyLen        = 32
	maxTokenBytes = 4096 // far above any token we sign; bounds parsing work
)

// accessClaims is the JWT payload of an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	Typ   string `json:"typ"`
	Epoch uint64 `json:"ep"`
}

// signAccess mints an access token for userID at the given token epoch.
func (s *Service) signAccess(userID string, epoch uint64, now time.Time) (string, error) {
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			ID:        randomToken(16),
		},
		Typ:   typAccess,
		Epoch: epoch,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign access token: %w", err)
	}
	return tok, nil
}

// parseAccess checks signature, algorithm, issuer, expiry and type, and
// returns the claims. It does not consult the user's epoch.
func (s *Service) parseAccess(token string) (*accessClaims, error) {
	if token == "" || len(token) > maxTokenBytes {
		return nil, ErrInvalidToken
	}
	var c accessClaims
	_, err := s.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already restricts alg to HS256; checking the
		// method's type as well means a future option change cannot
		// silently hand our HMAC secret to another algorithm.
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
			return nil, errors.New("unexpected signing method")
		}
		return s.key, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Typ != typAccess || c.Subject == "" {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

func newParser(now func() time.Time) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
}

// loadOrCreateKey returns the HMAC key in path, creating it with fresh
// random bytes on first start. A key readable by anyone but the owner is
// refused: whoever can read it can mint tokens for any user, admin included.
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: create key directory %s: %w", dir, err)
	}
	// Write a temp file and hard-link it into place: the key appears whole
	// or not at all, and of two servers racing on a fresh directory exactly
	// one wins while the other reads the winner's key.
	tmp, err := os.CreateTemp(dir, ".jwt-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("auth: create key file in %s: %w", dir, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	key = make([]byte, keyLen)
	_, _ = rand.Read(key)
	if _, err := tmp.Write(key); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("auth: write key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return nil, fmt.Errorf("auth: sync key file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("auth: close key file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("auth: install key file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new directory entry durable
		_ = d.Close()
	}
	return key, nil
}

// readKey reads an existing key file after checking its permissions.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("auth: open key file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("auth: stat key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("auth: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("auth: key file %s has mode %04o, readable by group or others; fix with: chmod 600 %s", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("auth: read key file %s: %w", path, err)
	}
	if len(key) < keyLen {
		return nil, fmt.Errorf("auth: key file %s holds %d bytes, need at least %d; delete it to generate a new key (this signs everyone out)", path, len(key), keyLen)
	}
	return key, nil
}

// randomToken returns n random bytes, base64url-encoded without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
