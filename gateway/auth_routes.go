package gateway

import (
	"net/http"

	"github.com/faultmaven/faultmaven/gateway/auth"
)

// Routes of contract §1.2 and §2: local accounts and tokens.

const (
	loginEndpoint    = "/api/v1/auth/login"
	registerEndpoint = "/api/v1/auth/register"
)

type authConfigResponse struct {
	AuthMode             string    `json:"auth_mode"` // "local" selects the password form
	LoginEndpoint        string    `json:"login_endpoint"`
	RegisterEndpoint     *string   `json:"register_endpoint"`
	SupportsRegistration bool      `json:"supports_registration"`
	OAuth                *struct{} `json:"oauth"`
}

func (s *Server) authConfig(w http.ResponseWriter, _ *http.Request) {
	resp := authConfigResponse{AuthMode: "local", LoginEndpoint: loginEndpoint}
	if s.auth.RegistrationOpen() {
		ep := registerEndpoint
		resp.RegisterEndpoint = &ep
		resp.SupportsRegistration = true
	}
	writeJSON(w, http.StatusOK, resp)
}

// userResponse is the "user" object of contract §2.1 (and /auth/me).
type userResponse struct {
	UserID      string   `json:"user_id"`
	Username    string   `json:"username"`
	Email       string   `json:"email"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
	IsDevUser   bool     `json:"is_dev_user"`
	IsActive    bool     `json:"is_active"`
}

func toUserResponse(u auth.User) *userResponse {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return &userResponse{
		UserID: u.UserID, Username: u.Username, Email: u.Email, DisplayName: u.DisplayName,
		Roles: roles, IsDevUser: u.IsDevUser, IsActive: u.IsActive,
	}
}

// tokenResponse is AuthTokenResponse (§2.1) and TokenRefreshResponse (§2.3).
type tokenResponse struct {
	AccessToken      string        `json:"access_token"`
	TokenType        string        `json:"token_type"`
	ExpiresIn        int           `json:"expires_in"`
	RefreshToken     string        `json:"refresh_token"`
	RefreshExpiresIn int           `json:"refresh_expires_in,omitempty"`
	SessionID        string        `json:"session_id,omitempty"`
	User             *userResponse `json:"user,omitempty"`
}

func toTokenResponse(t auth.Tokens) tokenResponse {
	resp := tokenResponse{
		AccessToken:      t.AccessToken,
		TokenType:        "bearer",
		ExpiresIn:        t.ExpiresIn,
		RefreshToken:     t.RefreshToken,
		RefreshExpiresIn: t.RefreshExpiresIn,
		SessionID:        t.SessionID,
	}
	if t.User != nil {
		resp.User = toUserResponse(*t.User)
	}
	return resp
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeRegister(s.body(w, r))
	if err != nil {
		return err
	}
	tok, err := s.auth.Register(r.Context(), auth.NewUser{
		Username: req.Username, Password: req.Password, Email: req.Email, DisplayName: req.DisplayName,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toTokenResponse(tok))
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeLogin(s.body(w, r))
	if err != nil {
		return err
	}
	tok, err := s.auth.Login(r.Context(), req.Username, req.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTokenResponse(tok))
	return nil
}

// refresh rotates a refresh token. The request carries no Authorization
// header: the refresh token is the credential.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeRefresh(s.body(w, r))
	if err != nil {
		return err
	}
	tok, err := s.auth.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTokenResponse(tok))
	return nil
}

type logoutResponse struct {
	AllSessionsEnded bool   `json:"all_sessions_ended"` // the only field the extension reads
	Message          string `json:"message"`
	RevokedTokens    int    `json:"revoked_tokens"`
}

// logout ends every sign-in of the caller; the extension sends no body.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	userID, err := principal(r)
	if err != nil {
		return err
	}
	n, err := s.auth.Logout(r.Context(), userID)
	if err != nil {
		return err
	}
	if s.ws != nil {
		s.ws.EndUser(userID) // their tokens are revoked: so are their open connections
	}
	writeJSON(w, http.StatusOK, logoutResponse{AllSessionsEnded: true, Message: "Logged out", RevokedTokens: n})
	return nil
}

// me is contract §2.5. A missing account is a 404, never a 401: a 401 with
// a valid token would log the extension out.
func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	userID, err := principal(r)
	if err != nil {
		return err
	}
	u, err := s.auth.User(r.Context(), userID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toUserResponse(u))
	return nil
}
