package gateway

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/faultmaven/faultmaven/gateway/session"
)

// Routes of contract §3: client sessions, the source of X-Session-Id.

type sessionResponse struct {
	SessionID      string    `json:"session_id"`
	SessionResumed bool      `json:"session_resumed"`
	ClientID       string    `json:"client_id"`
	Status         string    `json:"status"`
	CreatedAt      time.Time `json:"created_at"`
	UserID         string    `json:"user_id"`
	SessionType    string    `json:"session_type"`
	ExpiresAt      time.Time `json:"expires_at"`
	LastActivity   time.Time `json:"last_activity"`
}

func toSessionResponse(s session.Session, resumed bool) sessionResponse {
	return sessionResponse{
		SessionID: s.SessionID, SessionResumed: resumed, ClientID: s.ClientID, Status: s.Status,
		CreatedAt: s.CreatedAt, UserID: s.UserID, SessionType: s.SessionType,
		ExpiresAt: s.ExpiresAt, LastActivity: s.LastActivity,
	}
}

// createSession creates or resumes the session of a client_id. It runs with
// optional auth: the extension may call it before login (anonymous
// session), but a token it does send must be valid. Resuming still answers
// 201: the extension accepts any 2xx and must never see 404/410 here.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeSessionCreate(s.body(w, r))
	if err != nil {
		return err
	}
	var userID string
	if p, ok := PrincipalFrom(r.Context()); ok {
		userID = p.UserID
	}
	sess, resumed, err := s.sessions.CreateOrResume(r.Context(), userID, req.ClientID, req.SessionType, req.TimeoutMinutes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toSessionResponse(sess, resumed))
	return nil
}

// heartbeat extends a session. The extension ignores the answer and
// swallows errors; an unknown session is still a 404 for other clients.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	userID, err := principal(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "session_id")
	if id == "" || len(id) > maxShortField {
		return &Error{CodeSessionNotFound, "Session not found"}
	}
	if _, err := s.sessions.Heartbeat(r.Context(), userID, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
