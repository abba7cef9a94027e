package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
)

// Routes of contract §4. Everything under /api/v1/cases/{case_id} runs
// after caseScope, so the case exists and belongs to the caller; the
// services check ownership again on every call.

type caseListResponse struct {
	Cases      []actors.CaseRow `json:"cases"`
	TotalCount int              `json:"total_count"`
	Limit      int              `json:"limit"`
	Offset     int              `json:"offset"`
	HasMore    bool             `json:"has_more"`
}

// listCases includes brand-new and terminal cases (the extension groups
// them itself, §4.1).
func (s *Server) listCases(w http.ResponseWriter, r *http.Request) error {
	owner, err := principal(r)
	if err != nil {
		return err
	}
	p, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	rows, total, err := s.cases.List(r.Context(), owner, p.Limit, p.Offset)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []actors.CaseRow{}
	}
	writeJSON(w, http.StatusOK, caseListResponse{
		Cases: rows, TotalCount: total, Limit: p.Limit, Offset: p.Offset,
		HasMore: p.Offset+len(rows) < total,
	})
	return nil
}

// createCase answers 201 with the flat row (§4.2). A repeated
// Idempotency-Key returns the case the first request made.
func (s *Server) createCase(w http.ResponseWriter, r *http.Request) error {
	owner, err := principal(r)
	if err != nil {
		return err
	}
	key, err := parseIdempotencyKey(r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	req, err := decodeCaseCreate(s.body(w, r))
	if err != nil {
		return err
	}
	row, err := s.cases.Create(r.Context(), actors.CreateCase{
		Owner: owner, Title: req.Title, Description: req.Description,
		Priority: req.Priority, IdempotencyKey: key,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/cases/"+url.PathEscape(row.CaseID))
	writeJSON(w, http.StatusCreated, row)
	return nil
}

// getCase answers with the row caseScope loaded a moment ago.
func (s *Server) getCase(w http.ResponseWriter, r *http.Request) error {
	row, ok := CaseFrom(r.Context())
	if !ok {
		return errNoCase
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

func (s *Server) renameCase(w http.ResponseWriter, r *http.Request) error {
	owner, id, err := scopedCase(r)
	if err != nil {
		return err
	}
	req, err := decodeRename(s.body(w, r))
	if err != nil {
		return err
	}
	row, err := s.cases.Rename(r.Context(), owner, id, req.Title)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

func (s *Server) deleteCase(w http.ResponseWriter, r *http.Request) error {
	owner, id, err := scopedCase(r)
	if err != nil {
		return err
	}
	if err := s.cases.Delete(r.Context(), owner, id); err != nil {
		return err
	}
	// The case is gone; its files and documents go next. If that fails the user was
	// still told the truth (the case is deleted) and the files are
	// unreachable garbage, so it is logged, not reported.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), discardTimeout)
	defer cancel()
	if err := s.evidence.DeleteCase(ctx, id); err != nil {
		info := infoFrom(r.Context())
		info.logger().Error("evidence of a deleted case not removed", zap.String("request_id", info.id),
			zap.String("case_id", id), zap.Error(err))
	}
	// So do the knowledge documents scoped to it.
	if s.knowledge != nil {
		if _, err := s.knowledge.DeleteCase(ctx, id); err != nil {
			info := infoFrom(r.Context())
			info.logger().Error("knowledge documents of a deleted case not removed", zap.String("request_id", info.id),
				zap.String("case_id", id), zap.Error(err))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// caseUIResponse is the phase-adaptive view model (§4.4, §9 item 13).
// Progress is required by the extension when investigating; the closure
// fields appear (possibly null) for resolved and closed cases.
type caseUIResponse struct {
	CaseID             string                `json:"case_id"`
	Title              string                `json:"title"`
	State              string                `json:"state"`
	CreatedAt          time.Time             `json:"created_at"`
	UpdatedAt          time.Time             `json:"updated_at"`
	CurrentTurn        int                   `json:"current_turn"`
	UploadedFilesCount int                   `json:"uploaded_files_count"`
	ValidNextStates    []string              `json:"valid_next_states"`
	StatusHistory      []actors.StatusChange `json:"status_history"`
	Degraded           bool                  `json:"degraded"`
	Progress           *uiProgress           `json:"progress,omitempty"`
	// Extras beyond the extension's contract (it ignores unknown fields):
	// the investigation's state for the web UI and API clients.
	Hypotheses        []actors.HypothesisView `json:"hypotheses"`
	ActiveHypotheses  []actors.HypothesisView `json:"active_hypotheses"`
	WorkingConclusion *uiConclusion           `json:"working_conclusion,omitempty"`
	Solutions         []actors.SolutionView   `json:"solutions"`
	PendingStatus     string                  `json:"pending_status_change,omitempty"`
	TokenUsage        actors.TokenUsage       `json:"token_usage"`
	*uiClosure
}

// uiConclusion is the leading hypothesis (§4.4 working_conclusion).
type uiConclusion struct {
	Summary    string `json:"summary"`
	Confidence string `json:"confidence"`
}

// confidenceRank orders the domain's confidence levels.
var confidenceRank = map[string]int{"speculation": 1, "probable": 2, "confident": 3, "verified": 4}

type uiProgress struct {
	CurrentStage         string   `json:"current_stage"`
	CompletedIndicators  []string `json:"completed_indicators"`
	TotalEvidence        int      `json:"total_evidence"`
	ActiveHypotheses     int      `json:"active_hypotheses"`
	TurnsWithoutProgress int      `json:"turns_without_progress"`
}

type uiClosure struct {
	ClosureReason *string    `json:"closure_reason"`
	ClosedAt      *time.Time `json:"closed_at"`
	ResolvedAt    *time.Time `json:"resolved_at"`
}

func toCaseUI(v actors.CaseView) caseUIResponse {
	row := v.Row
	// The extension compares /ui state raw (§8 #25): exact lowercase.
	state := strings.ToLower(row.State)
	history := v.StatusHistory
	if history == nil {
		history = []actors.StatusChange{}
	}
	ui := caseUIResponse{
		CaseID: row.CaseID, Title: row.Title, State: state,
		CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt, CurrentTurn: row.CurrentTurn,
		UploadedFilesCount: v.UploadedFiles,
		ValidNextStates:    actors.ValidNextStates(state),
		StatusHistory:      history,
		Degraded:           row.Degraded,
		Hypotheses:         nonNilSlice(v.Hypotheses),
		ActiveHypotheses:   []actors.HypothesisView{},
		Solutions:          nonNilSlice(v.Solutions),
		PendingStatus:      v.PendingStatus,
		TokenUsage:         v.Tokens,
	}
	for _, h := range ui.Hypotheses {
		if h.Status == "active" || h.Status == "captured" || h.Status == "validated" {
			ui.ActiveHypotheses = append(ui.ActiveHypotheses, h)
			if ui.WorkingConclusion == nil || confidenceRank[h.Confidence] > confidenceRank[ui.WorkingConclusion.Confidence] {
				ui.WorkingConclusion = &uiConclusion{Summary: h.Statement, Confidence: h.Confidence}
			}
		}
	}
	if ui.ValidNextStates == nil {
		ui.ValidNextStates = []string{}
	}
	switch state {
	case actors.StatusInvestigating:
		milestones := v.Milestones
		if milestones == nil {
			milestones = []string{}
		}
		ui.Progress = &uiProgress{
			CurrentStage:        "diagnosis",
			CompletedIndicators: milestones,
			TotalEvidence:       v.UploadedFiles,
			ActiveHypotheses:    len(ui.ActiveHypotheses),
		}
	case actors.StatusResolved, actors.StatusClosed:
		ui.uiClosure = &uiClosure{ClosureReason: row.ClosureReason, ClosedAt: row.ClosedAt, ResolvedAt: row.ResolvedAt}
	}
	return ui
}

func (s *Server) caseUI(w http.ResponseWriter, r *http.Request) error {
	owner, id, err := scopedCase(r)
	if err != nil {
		return err
	}
	v, err := s.cases.View(r.Context(), owner, id)
	if err != nil {
		return err
	}
	// Files uploaded outside a turn have no event in the case's log, so
	// the evidence store has the true count.
	if n, err := s.evidence.Count(r.Context(), id); err == nil {
		v.UploadedFiles = n
	} else {
		info := infoFrom(r.Context())
		info.logger().Warn("evidence count unavailable for /ui", zap.String("request_id", info.id),
			zap.String("case_id", id), zap.Error(err))
	}
	ui := toCaseUI(v)
	if row, ok := CaseFrom(r.Context()); ok && row.Degraded {
		ui.Degraded = true // the row knows before the view does
	}
	writeJSON(w, http.StatusOK, ui)
	return nil
}

type messagesResponse struct {
	Messages       []actors.Message `json:"messages"`
	TotalCount     int              `json:"total_count"`
	RetrievedCount int              `json:"retrieved_count"`
	HasMore        bool             `json:"has_more"`
}

// caseMessages pages the conversation, oldest first (§4.5); the extension
// always asks for limit=100.
func (s *Server) caseMessages(w http.ResponseWriter, r *http.Request) error {
	owner, id, err := scopedCase(r)
	if err != nil {
		return err
	}
	p, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	msgs, total, err := s.cases.Messages(r.Context(), owner, id, p.Limit, p.Offset)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []actors.Message{}
	}
	writeJSON(w, http.StatusOK, messagesResponse{
		Messages: msgs, TotalCount: total, RetrievedCount: len(msgs),
		HasMore: p.Offset+len(msgs) < total,
	})
	return nil
}

type titleResponse struct {
	Title         string `json:"title"`
	SchemaVersion string `json:"schema_version"`
}

// caseTitle is "generate a title" (§4.6). Titles are set by the user or by
// the agent during turns, so this reports the current one as "existing",
// which the extension shows as "Title set previously".
func (s *Server) caseTitle(w http.ResponseWriter, r *http.Request) error {
	row, ok := CaseFrom(r.Context())
	if !ok {
		return errNoCase
	}
	if _, err := decodeTitle(s.body(w, r)); err != nil {
		return err
	}
	w.Header().Set("X-Title-Source", "existing")
	writeJSON(w, http.StatusOK, titleResponse{Title: row.Title, SchemaVersion: "1.0"})
	return nil
}

// closeCase is POST /close: a status change to closed.
func (s *Server) closeCase(w http.ResponseWriter, r *http.Request) error {
	owner, id, err := scopedCase(r)
	if err != nil {
		return err
	}
	req, err := decodeClose(s.body(w, r))
	if err != nil {
		return err
	}
	row, err := s.cases.ChangeStatus(r.Context(), owner, id, actors.StatusClosed, req.Reason, req.ClosureReason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// changeStatus is POST /status; the case service decides which moves are
// allowed (409 otherwise) and stamps closed_at/resolved_at.
func (s *Server) changeStatus(w http.ResponseWriter, r *http.Request) error {
	owner, id, err := scopedCase(r)
	if err != nil {
		return err
	}
	req, err := decodeStatus(s.body(w, r))
	if err != nil {
		return err
	}
	row, err := s.cases.ChangeStatus(r.Context(), owner, id, req.ToState, req.Reason, req.ClosureReason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
