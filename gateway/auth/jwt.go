package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/faultmaven/faultmaven/persistence"
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

// loadOrCreateKey returns the HMAC signing key, created on first start.
// Whoever can read it can mint tokens for any user, admin included, so
// persistence refuses a file readable by group or others.
func loadOrCreateKey(path string) ([]byte, error) {
	return persistence.LoadOrCreateSecret(path, keyLen)
}

// randomToken returns n random bytes, base64url-encoded without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
