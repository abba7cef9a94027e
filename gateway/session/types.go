package session

import (
	"errors"
	"time"
)

// Sentinel errors.
var (
	ErrNotFound     = errors.New("session: not found")
	ErrInvalidInput = errors.New("session: invalid input")
)

// Session is a client session (contract §3).
type Session struct {
	SessionID      string    `json:"session_id"`
	UserID         string    `json:"user_id"` // "" for an anonymous session
	ClientID       string    `json:"client_id"`
	SessionType    string    `json:"session_type"`
	Status         string    `json:"status"` // active | expired
	TimeoutMinutes int       `json:"timeout_minutes"`
	CreatedAt      time.Time `json:"created_at"`
	LastActivity   time.Time `json:"last_activity"`
	ExpiresAt      time.Time `json:"expires_at"`
}
