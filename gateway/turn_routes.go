package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/gateway/ws"
)

// REST turns (contract §5): POST /api/v1/cases/{case_id}/turns drives the
// same case actor as the WebSocket, waits up to TurnSyncWait for the
// answer, and otherwise answers 202 with a job to poll at
// GET /api/v1/jobs/{job_id}. Nothing is cached here: a repeated
// Idempotency-Key becomes the same client_msg_id, the case actor answers
// it with the first ack, and the outcome is rebuilt from the case's log
// (attachments from its EvidenceAdded events and the evidence store).
// Uploaded files and pastes are streamed into the evidence store and
// recorded with the user's message; the agent sees their digests.
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
	if r.ContentLength > s.cfg.MaxUploadBytes {
		return s.errUploadTooLarge()
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return errTurnMedia
	}
	// Files and the paste are stored as they stream in; if anything
	// later in the request fails, they are removed again, so a refused
	// request leaves neither a turn nor files behind.
	up := s.newUploads(r, caseID)
	put := func(u turnUpload, f *turnFields) error {
		ev := evidence.Upload{CaseID: caseID, Filename: u.Name, UploadSource: evidence.SourceFileUpload,
			Turn: up.nextTurn(), Body: u.Body}
		if u.Paste {
			ev.Filename, ev.UploadSource, ev.SourceURL = pasteLabel(f, time.Now())
		}
		return up.put(ev)
	}
	var fields turnFields
	switch mt {
	case "multipart/form-data":
		r.Body = s.uploadBody(w, r)
		mr, merr := r.MultipartReader()
		if merr != nil {
			return &Error{CodeMalformedForm, "multipart/form-data needs a boundary"}
		}
		fields, err = parseTurnMultipart(mr, put)
	case "application/x-www-form-urlencoded":
		fields, err = parseTurnURLEncoded(s.body(w, r), put)
	default:
		return errTurnMedia
	}
	if err != nil {
		up.discard()
		return s.uploadError(err)
	}
	if fields.Query == "" && len(up.files) == 0 && fields.IntentType == "" {
		return validation("a turn needs a query, pasted_content or a file")
	}
	req := actors.TurnRequest{Owner: owner, CaseID: caseID, Text: fields.Query, Evidence: evidenceRefs(up.files),
		IntentType: fields.IntentType, Intent: fields.IntentData}
	if key != "" {
		req.ClientMsgID = restClientMsgID(key)
	}
	ack, err := s.cases.SubmitTurn(r.Context(), req)
	if err != nil {
		if outcomeUnknown(err) {
			// The case may have stored the turn after all: keep what it
			// may name. A retry with the same key finds out.
			up.keep("turn outcome unknown", err)
		} else {
			up.discard()
		}
		return err
	}
	atts := attachmentsOf(up.files)
	if ack.Duplicate {
		// A replay of a key: the first request's files stand.
		up.discard()
		if atts, err = s.turnAttachments(r.Context(), owner, caseID, ack.Seq-1, ack.Turn); err != nil {
			return err
		}
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

// pasteLabel names a paste the way the extension recognises it (contract
// §5.2: the "pasted-content-" and "page-capture-" prefixes).
func pasteLabel(f *turnFields, now time.Time) (filename, uploadSource, sourceURL string) {
	stamp := strconv.FormatInt(now.Unix(), 10)
	if f.pageCapture() {
		return "page-capture-" + stamp + ".txt", evidence.SourcePageCapture, f.SourceURL
	}
	return "pasted-content-" + stamp + ".txt", evidence.SourcePaste, ""
}

var errTurnMedia = &Error{CodeUnsupportedMedia, "Send the turn as multipart/form-data"}

// outcomeUnknown reports whether a failed call may still have reached the
// case (it answered too late, or crashed while handling it).
func outcomeUnknown(err error) bool {
	return errors.Is(err, actors.ErrTimeout) || errors.Is(err, actors.ErrCaseFailed) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// restClientMsgID turns an Idempotency-Key into the turn's client_msg_id.
// Keys longer than the case service accepts are hashed.
func restClientMsgID(key string) string {
	if len(ws.ReservedMsgPrefix)+len(key) <= ws.MaxClientMsgIDLen {
		return ws.ReservedMsgPrefix + key
	}
	sum := sha256.Sum256([]byte(key))
	return ws.ReservedMsgPrefix + "sha256:" + hex.EncodeToString(sum[:])
}

func failReason(reason string) string {
	if reason == "" {
		return "The turn failed"
	}
	return ws.TruncateRunes(reason, maxReason)
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
		atts, err := s.turnAttachments(r.Context(), owner, caseID, 0, turn)
		if err != nil {
			return err
		}
		resp := toTurnResponse(out, atts)
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
