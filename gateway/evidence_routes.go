package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
)

// Evidence routes (contract §6.1–6.2), all under CaseRouter, so the case
// belongs to the caller before the evidence store, which knows no users,
// is asked anything:
//
//	GET    /api/v1/cases/{case_id}/uploaded-files            list
//	POST   /api/v1/cases/{case_id}/uploaded-files            upload one file
//	GET    /api/v1/cases/{case_id}/uploaded-files/{file_id}  detail
//	DELETE /api/v1/cases/{case_id}/uploaded-files/{file_id}  delete
//	GET    /api/v1/cases/{case_id}/timeline                  merged timeline
//
// A file uploaded here, outside a turn, is recorded only in the evidence
// store: the case's log gets no event until a turn names it (a WebSocket
// turn's attachments). The agent still sees it in every later turn, through
// the digests and its list/read/search tools, which read the store.

// uploadedFile is an entry of the uploaded-files list (§6.1).
// evidence_count is 1 when the file has an analysis digest: the extension
// shows its "N evidence" link, which opens the detail, only above 0 (§8 #18).
type uploadedFile struct {
	FileID         string    `json:"file_id"`
	Filename       string    `json:"filename"`
	SizeBytes      int64     `json:"size_bytes"`
	SizeDisplay    string    `json:"size_display"`
	UploadedAtTurn int       `json:"uploaded_at_turn"`
	EvidenceCount  int       `json:"evidence_count"`
	AnalysisStatus string    `json:"analysis_status"`
	SourceType     string    `json:"source_type"`
	Summary        string    `json:"summary"`
	UploadedAt     time.Time `json:"uploaded_at"`
	DuplicateOf    string    `json:"duplicate_of,omitempty"`
}

type uploadedFilesResponse struct {
	Files      []uploadedFile `json:"files"`
	TotalCount int            `json:"total_count"`
	Limit      int            `json:"limit"`
	Offset     int            `json:"offset"`
}

// uploadedFileDetail is GET …/uploaded-files/{file_id} (§6.2).
type uploadedFileDetail struct {
	FileID          string            `json:"file_id"`
	Filename        string            `json:"filename"`
	UploadedAtTurn  int               `json:"uploaded_at_turn"`
	Summary         string            `json:"summary"`
	SizeBytes       int64             `json:"size_bytes"`
	SourceType      string            `json:"source_type"`
	AnalysisStatus  string            `json:"analysis_status"`
	DerivedEvidence []derivedEvidence `json:"derived_evidence"`
}

// derivedEvidence is what the analysis made of a file: one item, the
// digest, identified by the file's id.
type derivedEvidence struct {
	EvidenceID           string   `json:"evidence_id"`
	Summary              string   `json:"summary"`
	Category             string   `json:"category"`
	RelatedHypothesisIDs []string `json:"related_hypothesis_ids"`
}

type timelineResponse struct {
	CaseID   string                 `json:"case_id"`
	Timeline []actors.TimelineEntry `json:"timeline"`
}

// defaultFilesLimit is the page size when ?limit is absent; the extension
// sends none and expects every file.
const defaultFilesLimit = 100

func toUploadedFile(f evidence.File, digested bool) uploadedFile {
	u := uploadedFile{
		FileID: f.FileID, Filename: f.Filename, SizeBytes: f.SizeBytes, SizeDisplay: sizeDisplay(f.SizeBytes),
		UploadedAtTurn: f.UploadedAtTurn, AnalysisStatus: f.AnalysisStatus, SourceType: string(f.Kind),
		Summary: f.Summary, UploadedAt: f.UploadedAt, DuplicateOf: f.DuplicateOf,
	}
	if digested {
		u.EvidenceCount = 1
	}
	return u
}

// digestsBySHA maps the case's contents to their digests (duplicates share
// their first copy's).
func (s *Server) digestsBySHA(ctx context.Context, caseID string) (map[string]string, error) {
	files, err := s.evidence.Digests(ctx, caseID)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(files))
	for _, f := range files {
		m[f.SHA256] = f.Digest
	}
	return m, nil
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) error {
	_, caseID, err := scopedCase(r)
	if err != nil {
		return err
	}
	p, err := parsePageDefault(r.URL.Query(), defaultFilesLimit)
	if err != nil {
		return err
	}
	files, err := s.evidence.List(r.Context(), caseID)
	if err != nil {
		return err
	}
	digests, err := s.digestsBySHA(r.Context(), caseID)
	if err != nil {
		return err
	}
	resp := uploadedFilesResponse{Files: []uploadedFile{}, TotalCount: len(files), Limit: p.Limit, Offset: p.Offset}
	if p.Offset < len(files) {
		for _, f := range files[p.Offset:min(len(files), p.Offset+p.Limit)] {
			resp.Files = append(resp.Files, toUploadedFile(f, digests[f.SHA256] != ""))
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	_, caseID, err := scopedCase(r)
	if err != nil {
		return err
	}
	f, err := s.evidence.Get(r.Context(), caseID, chi.URLParam(r, "file_id"))
	if err != nil {
		return err
	}
	digests, err := s.digestsBySHA(r.Context(), caseID)
	if err != nil {
		return err
	}
	d := uploadedFileDetail{
		FileID: f.FileID, Filename: f.Filename, UploadedAtTurn: f.UploadedAtTurn, Summary: f.Summary,
		SizeBytes: f.SizeBytes, SourceType: string(f.Kind), AnalysisStatus: f.AnalysisStatus,
		DerivedEvidence: []derivedEvidence{},
	}
	if digest := digests[f.SHA256]; digest != "" {
		d.DerivedEvidence = append(d.DerivedEvidence, derivedEvidence{
			EvidenceID: f.FileID, Summary: f.Summary, Category: evidenceCategory(f.Kind, digest),
			RelatedHypothesisIDs: []string{},
		})
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// evidenceCategory is "symptom" for a log whose digest lists errors or
// warnings, else "context" (the original's categories are symptom, causal
// and resolution; only the agent could tell the last two).
func evidenceCategory(kind evidence.Kind, digest string) string {
	if kind == evidence.KindLogs && logHasErrors(digest) {
		return "symptom"
	}
	return "context"
}

// logHasErrors reads a loginsight digest: its summary line counts the
// records at ERROR or worse ("… (12 ERROR or worse) …") and a section lists
// the templates that are mostly WARN or worse.
func logHasErrors(digest string) bool {
	if strings.Contains(digest, "### Errors and warnings") {
		return true
	}
	i := strings.Index(digest, " ERROR or worse)")
	if i < 0 {
		return false
	}
	j := strings.LastIndexByte(digest[:i], '(')
	n := strings.ReplaceAll(digest[j+1:i], ",", "")
	count, err := strconv.ParseInt(n, 10, 64)
	return err == nil && count > 0
}

func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error {
	_, caseID, err := scopedCase(r)
	if err != nil {
		return err
	}
	if err := s.evidence.Delete(r.Context(), caseID, chi.URLParam(r, "file_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadFile stores one file streamed from a multipart body (never parsed
// into memory or spooled to disk by net/http) and answers 201 with its
// list entry.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) error {
	_, caseID, err := scopedCase(r)
	if err != nil {
		return err
	}
	if r.ContentLength > s.cfg.MaxUploadBytes {
		return s.errUploadTooLarge()
	}
	if !isMultipart(r) {
		return &Error{CodeUnsupportedMedia, `Send the file as multipart/form-data with a part named "file"`}
	}
	r.Body = s.uploadBody(w, r)
	mr, err := r.MultipartReader()
	if err != nil {
		return &Error{CodeMalformedForm, "multipart/form-data needs a boundary"}
	}
	up := s.newUploads(r, caseID)
	// Outside a turn the file belongs to the turn the case is at.
	turn := up.nextTurn() - 1
	err = parseUploadMultipart(mr, func(name string, f uploadFields, body io.Reader) error {
		return up.put(evidence.Upload{CaseID: caseID, Filename: name, UploadSource: f.UploadSource,
			SourceURL: f.SourceURL, Turn: turn, Body: body})
	})
	if err != nil {
		up.discard()
		return s.uploadError(err)
	}
	f := up.files[0]
	digests, err := s.digestsBySHA(r.Context(), caseID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/cases/"+url.PathEscape(caseID)+"/uploaded-files/"+url.PathEscape(f.FileID))
	writeJSON(w, http.StatusCreated, toUploadedFile(f, digests[f.SHA256] != ""))
	return nil
}

func (s *Server) caseTimeline(w http.ResponseWriter, r *http.Request) error {
	owner, caseID, err := scopedCase(r)
	if err != nil {
		return err
	}
	entries, err := s.cases.Timeline(r.Context(), owner, caseID)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []actors.TimelineEntry{}
	}
	writeJSON(w, http.StatusOK, timelineResponse{CaseID: caseID, Timeline: entries})
	return nil
}

// uploads are the files one request has stored so far, so that a request
// that fails later can take them back.
type uploads struct {
	s      *Server
	r      *http.Request
	caseID string
	files  []evidence.File
}

func (s *Server) newUploads(r *http.Request, caseID string) *uploads {
	return &uploads{s: s, r: r, caseID: caseID}
}

func (u *uploads) put(up evidence.Upload) error {
	f, err := u.s.evidence.Put(u.r.Context(), up)
	if err != nil {
		return err
	}
	u.files = append(u.files, f)
	return nil
}

// nextTurn is the number the case's next turn will get, as of the row the
// ownership check loaded. A concurrent turn of the same case can take it
// first; the EvidenceAdded event always carries the real number.
func (u *uploads) nextTurn() int {
	row, _ := CaseFrom(u.r.Context())
	return row.CurrentTurn + 1
}

// discardTimeout bounds the removal of a failed request's files; it runs
// even when the client has gone.
const discardTimeout = 10 * time.Second

// discard removes the files stored so far. Failures are logged: the files
// stay listed, which is untidy but not wrong.
func (u *uploads) discard() {
	if len(u.files) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.r.Context()), discardTimeout)
	defer cancel()
	for _, f := range u.files {
		if err := u.s.evidence.Delete(ctx, u.caseID, f.FileID); err != nil && !errors.Is(err, evidence.ErrNotFound) {
			info := infoFrom(u.r.Context())
			info.logger().Warn("uploaded file of a failed request not removed", zap.String("request_id", info.id),
				zap.String("case_id", u.caseID), zap.String("file_id", f.FileID), zap.Error(err))
		}
	}
	u.files = nil
}

// keep leaves the stored files in place and says why.
func (u *uploads) keep(why string, err error) {
	if len(u.files) == 0 {
		return
	}
	info := infoFrom(u.r.Context())
	info.logger().Warn("keeping the uploads of a failed request", zap.String("request_id", info.id),
		zap.String("case_id", u.caseID), zap.String("reason", why), zap.Int("files", len(u.files)), zap.Error(err))
}

// uploadBody caps a multipart body at MaxUploadBytes.
func (s *Server) uploadBody(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	if r.Body == nil {
		return http.NoBody
	}
	return http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
}

func (s *Server) errUploadTooLarge() error {
	return &Error{CodeTooLarge, "The upload is larger than the limit of " + byteSize(s.cfg.MaxUploadBytes) + "; nothing was stored"}
}

// uploadError names the request's own cap when the body crossed it; the
// store's cap and everything else map through the error table.
func (s *Server) uploadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return s.errUploadTooLarge()
	}
	return err
}

// sizeDisplay prints a size the way the extension shows one ("1.2 MB").
func sizeDisplay(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return strconv.FormatInt(n, 10) + " B"
	case n < k*k:
		return strconv.FormatFloat(float64(n)/k, 'f', 1, 64) + " KB"
	case n < k*k*k:
		return strconv.FormatFloat(float64(n)/(k*k), 'f', 1, 64) + " MB"
	}
	return strconv.FormatFloat(float64(n)/(k*k*k), 'f', 1, 64) + " GB"
}
