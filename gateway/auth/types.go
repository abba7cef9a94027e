package auth

import (
	"errors"
	"time"
)

// Sentinel errors; the gateway maps each to one HTTP status and code.
var (
	ErrInvalidCredentials = errors.New("auth: invalid username or password")
	ErrInvalidToken       = errors.New("auth: invalid or expired token")
	ErrUserExists         = errors.New("auth: user already exists")
	ErrRegistrationClosed = errors.New("auth: registration is disabled")
	ErrInvalidInput       = errors.New("auth: invalid input")
	ErrUserNotFound       = errors.New("auth: user not found")
)

// Role names.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// User is the public view of an account (contract §2.1 "user").
type User struct {
	UserID      string    `json:"user_id"`
	Username    string    `json:"username"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	IsDevUser   bool      `json:"is_dev_user"`
	IsActive    bool      `json:"is_active"`
	CreatedAt   time.Time `json:"created_at"`
}

// IsAdmin reports whether the user holds the admin role.
func (u User) IsAdmin() bool {
	for _, r := range u.Roles {
		if r == RoleAdmin {
			return true
		}
	}
	return false
}

// NewUser is the input of Register and CreateUser.
type NewUser struct {
	Username    string
	Password    string
	Email       string
	DisplayName string
	Admin       bool // CreateUser only; Register makes the first user admin
}

// Tokens is what login, register and refresh hand back (contract §2.1, §2.3).
type Tokens struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"` // always "bearer"
	ExpiresIn        int    `json:"expires_in"` // seconds
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"` // seconds
	SessionID        string `json:"session_id,omitempty"`
	User             *User  `json:"user,omitempty"`
}

// Principal is the verified identity behind an access token.
type Principal struct {
	UserID   string
	Username string
	Roles    []string
	// Expires is when the access token it came from expires (zero when
	// unknown). Long-lived connections end then unless re-authenticated.
	Expires time.Time
}

// IsAdmin reports whether the principal holds the admin role.
func (p Principal) IsAdmin() bool {
	for _, r := range p.Roles {
		if r == RoleAdmin {
			return true
		}
	}
	return false
}
