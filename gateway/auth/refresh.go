package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/faultmaven/faultmaven/persistence"
)

const (
	refreshPrefix   = "fmr_"
	refreshRawLen   = 32
	refreshEncLen   = len(refreshPrefix) + 43 // base64url of 32 bytes, no padding
	tokenTypeBearer = "bearer"
)

// refreshRecord is stored under the SHA-256 of a refresh token; the token
// itself is never stored, so a copy of the database cannot be replayed.
type refreshRecord struct {
	UserID    string    `json:"user_id"`
	FamilyID  string    `json:"family_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Used      bool      `json:"used"` // rotated away; presenting it again is reuse
}

// familyRecord is the per-user index entry of one refresh family (one
// login session). ExpiresAt is that of the family's newest token, so an
// entry past it belongs to a family nobody can refresh any more.
type familyRecord struct {
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// newRefreshToken returns a fresh opaque token and the hash it is stored by.
func newRefreshToken() (token, hash string) {
	token = refreshPrefix + randomToken(refreshRawLen)
	return token, hashRefresh(token)
}

func hashRefresh(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// refreshHash validates the token's shape before any lookup, so garbage
// costs neither a hash nor a read.
func refreshHash(token string) (string, bool) {
	if len(token) != refreshEncLen || !strings.HasPrefix(token, refreshPrefix) {
		return "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token[len(refreshPrefix):]); err != nil {
		return "", false
	}
	return hashRefresh(token), true
}

// issueTokens starts a new refresh family for the user and mints the first
// access/refresh pair. Expired families of the user are pruned in the same
// batch, which keeps the per-user index bounded without a janitor. It
// ignores cancellation: Register calls it after the account is already
// durable, and a half-done sign-up is worse than a late answer.
func (s *Service) issueTokens(userID string) (Tokens, error) {
	mu := s.stripe(userID)
	mu.Lock()
	rec, err := s.loadUser(userID)
	if err != nil {
		mu.Unlock()
		return Tokens{}, err
	}
	now := s.cfg.Now().UTC()
	family := newSessionID()
	refresh, hash := newRefreshToken()
	b := s.ks.NewBatch()
	_, err = s.revokeFamilies(b, userID, func(f familyRecord) bool { return !now.Before(f.ExpiresAt) })
	if err == nil {
		err = s.stageRefresh(b, hash, refreshRecord{
			UserID: userID, FamilyID: family, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
		}, familyRecord{CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)})
	}
	if err != nil {
		b.Close()
		mu.Unlock()
		return Tokens{}, fmt.Errorf("auth: issue tokens for %s: %w", userID, err)
	}
	err = b.Commit(true)
	mu.Unlock()
	if err != nil {
		return Tokens{}, fmt.Errorf("auth: issue tokens for %s: %w", userID, err)
	}
	return s.tokens(rec, family, refresh, now)
}

// Refresh exchanges a refresh token for a new access/refresh pair in the
// same family. The presented token is marked used in the same synced batch
// that stores its successor. Presenting a used token again means two parties
// hold the family, so the whole family is revoked.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	if err := ctx.Err(); err != nil {
		return Tokens{}, err
	}
	hash, ok := refreshHash(refreshToken)
	if !ok {
		return Tokens{}, ErrInvalidToken
	}
	// The first read only learns whose lock to take; everything is
	// re-read under it.
	rec, err := s.loadRefresh(hash)
	if err != nil {
		return Tokens{}, err
	}
	mu := s.stripe(rec.UserID)
	mu.Lock()
	defer mu.Unlock()
	if rec, err = s.loadRefresh(hash); err != nil {
		return Tokens{}, err
	}
	now := s.cfg.Now().UTC()
	if rec.Used {
		b := s.ks.NewBatch()
		if err := s.revokeFamily(b, rec.UserID, rec.FamilyID); err != nil {
			b.Close()
			return Tokens{}, fmt.Errorf("auth: revoke reused family: %w", err)
		}
		if err := b.Commit(true); err != nil {
			return Tokens{}, fmt.Errorf("auth: revoke reused family: %w", err)
		}
		return Tokens{}, fmt.Errorf("%w: refresh token reused; its session was revoked", ErrInvalidToken)
	}
	if !now.Before(rec.ExpiresAt) {
		return Tokens{}, fmt.Errorf("%w: refresh token expired", ErrInvalidToken)
	}
	user, err := s.loadUser(rec.UserID)
	if errors.Is(err, ErrUserNotFound) || (err == nil && !user.Active) {
		return Tokens{}, ErrInvalidToken
	}
	if err != nil {
		return Tokens{}, err
	}
	fam, err := s.loadFamily(rec.UserID, rec.FamilyID)
	if err != nil {
		return Tokens{}, err
	}
	refresh, newHash := newRefreshToken()
	fam.ExpiresAt = now.Add(s.cfg.RefreshTTL)
	old := rec
	old.Used = true
	b := s.ks.NewBatch()
	err = s.setJSON(b, refreshKey(hash), old)
	if err == nil {
		err = s.stageRefresh(b, newHash, refreshRecord{
			UserID: rec.UserID, FamilyID: rec.FamilyID, CreatedAt: now, ExpiresAt: fam.ExpiresAt,
		}, fam)
	}
	if err != nil {
		b.Close()
		return Tokens{}, fmt.Errorf("auth: rotate refresh token: %w", err)
	}
	if err := b.Commit(true); err != nil {
		return Tokens{}, fmt.Errorf("auth: rotate refresh token: %w", err)
	}
	return s.tokens(user, rec.FamilyID, refresh, now)
}

// tokens signs the access token and assembles the response.
func (s *Service) tokens(rec userRecord, family, refresh string, now time.Time) (Tokens, error) {
	access, err := s.signAccess(rec.ID, rec.Epoch, now)
	if err != nil {
		return Tokens{}, err
	}
	u := rec.public()
	return Tokens{
		AccessToken:      access,
		TokenType:        tokenTypeBearer,
		ExpiresIn:        int(s.cfg.AccessTTL / time.Second),
		RefreshToken:     refresh,
		RefreshExpiresIn: int(s.cfg.RefreshTTL / time.Second),
		SessionID:        family,
		User:             &u,
	}, nil
}

// stageRefresh adds a new token of a family, its family-membership entry
// and the family's index entry to b.
func (s *Service) stageRefresh(b *persistence.Batch, hash string, rec refreshRecord, fam familyRecord) error {
	if err := s.setJSON(b, refreshKey(hash), rec); err != nil {
		return err
	}
	if err := b.Set(append(familyPrefix(rec.FamilyID), hash...), nil); err != nil {
		return err
	}
	return s.setJSON(b, append(userFamilyPrefix(rec.UserID), rec.FamilyID...), fam)
}

// revokeFamilies stages the revocation of every family of userID that match
// selects, returning how many. The caller holds the user's stripe.
func (s *Service) revokeFamilies(b *persistence.Batch, userID string, match func(familyRecord) bool) (int, error) {
	prefix := userFamilyPrefix(userID)
	var doomed []string
	err := s.ks.Scan(prefix, false, func(k, v []byte) error {
		var f familyRecord
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("decode family %s: %w", k, err)
		}
		if match(f) {
			doomed = append(doomed, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, fam := range doomed {
		if err := s.revokeFamily(b, userID, fam); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// revokeFamily stages deletion of every token of the family and of its
// index entries; afterwards each of its tokens is simply unknown.
func (s *Service) revokeFamily(b *persistence.Batch, userID, family string) error {
	prefix := familyPrefix(family)
	err := s.ks.Scan(prefix, false, func(k, _ []byte) error {
		return b.Delete(refreshKey(string(k[len(prefix):])))
	})
	if err != nil {
		return fmt.Errorf("scan family %s: %w", family, err)
	}
	if err := b.DeletePrefix(prefix); err != nil {
		return err
	}
	return b.Delete(append(userFamilyPrefix(userID), family...))
}

func (s *Service) loadRefresh(hash string) (refreshRecord, error) {
	var rec refreshRecord
	v, err := s.ks.Get(refreshKey(hash))
	if errors.Is(err, persistence.ErrNotFound) {
		return rec, ErrInvalidToken
	}
	if err != nil {
		return rec, fmt.Errorf("auth: load refresh token: %w", err)
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("auth: decode refresh token: %w", err)
	}
	return rec, nil
}

func (s *Service) loadFamily(userID, family string) (familyRecord, error) {
	var f familyRecord
	v, err := s.ks.Get(append(userFamilyPrefix(userID), family...))
	if errors.Is(err, persistence.ErrNotFound) {
		// A live token whose family entry is gone cannot be produced by
		// this package (both are written and deleted together).
		return f, ErrInvalidToken
	}
	if err != nil {
		return f, fmt.Errorf("auth: load family: %w", err)
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return f, fmt.Errorf("auth: decode family: %w", err)
	}
	return f, nil
}

func (s *Service) setJSON(b *persistence.Batch, key []byte, v any) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Set(key, val)
}
