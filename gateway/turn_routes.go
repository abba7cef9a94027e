package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
)

// REST turns (contract §5): POST /api/v1/cases/{case_id}/turns drives the
// same case actor as the WebSocket, waits up to TurnSyncWait for the
// answer, and otherwise answers 202 with a job to poll at
// GET /api/v1/jobs/{job_id}. Nothing is cached here: a repeated
// Idempotency-Key becomes the same client_msg_id, the case actor answers
// it with the first ack, and the outcome is rebuilt from the case's log.
// Also the operators' view of what left for an LLM:
// GET /api/v1/admin/cases/{case_id}/egress.

// turnResponse is TurnResponse (§5.2). Arrays are never null.
type turnResponse struct {
	AgentResponse        string                   `json:"agent_response"`
	TurnNumber           int                      `json:"turn_number"`
	CaseState            string                   `json:"case_state"`
	SuggestedActions     []actors.SuggestedAction `json:"suggested_actions"`
	AttachmentsProcessed []attachmentResult       `json:"attachments_processed"`
	MilestonesCompleted  []string                 `json:"milestones_completed"`
	ProgressMade         bool                     `json:"progress_made"`
}

func toTurnResponse(out actors.TurnOutcome, atts []attachmentResult) turnResponse {
	resp := turnResponse{
		AgentResponse: out.AgentResponse, TurnNumber: out.Turn,
		CaseState:            strings.ToLower(out.CaseState), // compared raw by the extension (§8 #25)
		SuggestedActions:     out.SuggestedActions,
		AttachmentsProcessed: atts,
		MilestonesCompleted:  out.MilestonesCompleted,
		ProgressMade:         out.ProgressMade,
	}
	if resp.SuggestedActions == nil {
		resp.SuggestedActions = []actors.SuggestedAction{}
	}
	if resp.AttachmentsProcessed == nil {
		resp.AttachmentsProcessed = []attachmentResult{}
	}
	if resp.MilestonesCompleted == nil {
		resp.MilestonesCompleted = []string{}
	}
	return resp
}

// jobResponse is the 202 body and every poll answer (§5.3).
type jobResponse struct {
	Status string        `json:"status"`
	JobID  string        `json:"job_id,omitempty"`
	Result *turnResponse `json:"result,omitempty"`
	Error  *jobError     `json:"error,omitempty"`
}

type jobError struct {
	Message string `json:"message"`
}

var errJobNotFound = &Error{CodeNotFound, "Job not found"}

func (s *Server) submitTurn(w http.ResponseWriter, r *http.Request) error {
	owner, caseID, err := scopedCase(r)
	if err != nil {
		return err
	}
	key, err := parseIdempotencyKey(r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	tooBig := &Error{CodeTooLarge, fmt.Sprintf("The turn is larger than the upload limit of %s", byteSize(s.cfg.MaxUploadBytes))}
	if r.ContentLength > s.cfg.MaxUploadBytes {
		return tooBig
	}
	var body io.Reader = http.NoBody
	if r.Body != nil {
		body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	}
	form, err := parseTurnForm(r.Header.Get("Content-Type"), body, s.cfg.MaxUploadBytes)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return tooBig
	}
	if err != nil {
		return err
	}
	text, err := form.turnText()
	if err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" && form.IntentType == "" {
		return validation("a turn needs a query, pasted_content or a file")
	}
	req := actors.TurnRequest{Owner: owner, CaseID: caseID, Text: text, IntentType: form.IntentType, Intent: form.IntentData}
	if key != "" {
		req.ClientMsgID = restClientMsgID(key)
	}
	ack, err := s.cases.SubmitTurn(r.Context(), req)
	if err != nil {
		return err
	}
	var atts []attachmentResult
	if len(form.Files) > 0 || form.PastedContent != "" {
		atts = form.attachmentResults(caseID, ack.Turn, s.messageTime(r.Context(), owner, ack))
	}
	out, err := s.cases.AwaitTurn(r.Context(), owner, ack, s.cfg.TurnSyncWait)
	if err != nil {
		return err
	}
	switch out.Status {
	case actors.TurnCompleted:
		writeJSON(w, http.StatusOK, toTurnResponse(out, atts))
	case actors.TurnFailed:
		return &Error{CodeTurnFailed, failReason(out.Reason)}
	default:
		id := jobID(caseID, ack.Turn)
		w.Header().Set("Location", s.absoluteURL(r, "/api/v1/jobs/"+url.PathEscape(id)))
		writeJSON(w, http.StatusAccepted, jobResponse{Status: actors.TurnPending, JobID: id})
	}
	return nil
}

// restClientMsgID turns an Idempotency-Key into the turn's client_msg_id.
// Keys longer than the case service accepts are hashed.
func restClientMsgID(key string) string {
	if len(reservedMsgPrefix)+len(key) <= maxClientMsgIDLen {
		return reservedMsgPrefix + key
	}
	sum := sha256.Sum256([]byte(key))
	return reservedMsgPrefix + "sha256:" + hex.EncodeToString(sum[:])
}

func failReason(reason string) string {
	if reason == "" {
		return "The turn failed"
	}
	return truncateRunes(reason, maxReason)
}

// messageTime is when the user message of ack was stored, read from its
// event so that a replayed request reports the same uploaded_at. It peeks
// at one replayed frame and refuses the rest (the case then drops the
// subscription at once, so there is nothing to unsubscribe). On any
// failure it falls back to now.
func (s *Server) messageTime(ctx context.Context, owner string, ack actors.Ack) time.Time {
	p := &peek{}
	_, err := s.cases.Subscribe(ctx, owner, ack.CaseID, ack.Seq-1, p)
	if err != nil && !errors.Is(err, actors.ErrSlowSubscriber) {
		return time.Now()
	}
	f, ok := p.frame()
	var d struct {
		CreatedAt time.Time `json:"created_at"`
	}
	if !ok || f.Seq != ack.Seq || json.Unmarshal(f.Data, &d) != nil || d.CreatedAt.IsZero() {
		return time.Now()
	}
	return d.CreatedAt
}

// peek is a Subscriber that takes the first frame and refuses the rest.
type peek struct {
	mu  sync.Mutex
	got *actors.Frame
}

func (p *peek) Deliver(f actors.Frame) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got == nil {
		p.got = &f
	}
	return false
}

func (p *peek) frame() (actors.Frame, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got == nil {
		return actors.Frame{}, false
	}
	return *p.got, true
}

// Job ids name a turn: "turn.<case_id>.<turn>".
const jobPrefix = "turn."

func jobID(caseID string, turn int) string { return jobPrefix + caseID + "." + strconv.Itoa(turn) }

func parseJobID(id string) (caseID string, turn int, ok bool) {
	rest, found := strings.CutPrefix(id, jobPrefix)
	i := strings.LastIndexByte(rest, '.')
	if !found || i <= 0 || i > maxCaseIDLen {
		return "", 0, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 1 || strconv.Itoa(n) != rest[i+1:] {
		return "", 0, false
	}
	return rest[:i], n, true
}

// absoluteURL makes path absolute (§5.3: a relative Location would lose a
// path prefix of the API base URL): PublicURL when set, else the scheme
// and Host the request came in with.
func (s *Server) absoluteURL(r *http.Request, path string) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if s.cfg.TrustedProxies > 0 {
		if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
			scheme = p
		}
	}
	return scheme + "://" + r.Host + path
}

// getJob polls a turn (§5.3). A malformed id, a turn that does not exist
// and another user's case are the same 404.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	owner, err := principal(r)
	if err != nil {
		return err
	}
	caseID, turn, ok := parseJobID(chi.URLParam(r, "job_id"))
	if !ok {
		return errJobNotFound
	}
	infoFrom(r.Context()).setCase(caseID)
	out, err := s.cases.TurnResult(r.Context(), owner, caseID, turn)
	if errors.Is(err, actors.ErrNotFound) {
		return errJobNotFound
	}
	if err != nil {
		return err
	}
	switch out.Status {
	case actors.TurnCompleted:
		resp := toTurnResponse(out, nil)
		writeJSON(w, http.StatusOK, jobResponse{Status: actors.TurnCompleted, Result: &resp})
	case actors.TurnFailed:
		writeJSON(w, http.StatusOK, jobResponse{Status: actors.TurnFailed, Error: &jobError{Message: failReason(out.Reason)}})
	default:
		writeJSON(w, http.StatusOK, jobResponse{Status: actors.TurnPending})
	}
	return nil
}

type egressResponse struct {
	CaseID  string                `json:"case_id"`
	Records []actors.EgressRecord `json:"records"`
}

// caseEgress shows an admin exactly what was sent to LLMs for a case.
// Anyone else gets the 404 of a case that does not exist.
func (s *Server) caseEgress(w http.ResponseWriter, r *http.Request) error {
	p, ok := PrincipalFrom(r.Context())
	if !ok || !p.IsAdmin() {
		return errCaseNotFound
	}
	caseID := chi.URLParam(r, "case_id")
	if caseID == "" || len(caseID) > maxCaseIDLen {
		return errCaseNotFound
	}
	infoFrom(r.Context()).setCase(caseID)
	recs, err := s.cases.Egress(r.Context(), caseID)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []actors.EgressRecord{}
	}
	infoFrom(r.Context()).logger().Info("egress audit read", zap.String("request_id", RequestIDFrom(r.Context())),
		zap.String("user_id", p.UserID), zap.String("case_id", caseID), zap.Int("records", len(recs)))
	writeJSON(w, http.StatusOK, egressResponse{CaseID: caseID, Records: recs})
	return nil
}

// byteSize prints a byte count the way people say it ("10 MiB").
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
