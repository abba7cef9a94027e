package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/embed"
	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"
)

// Knowledge-base routes (copilot contract §6.3; the extension itself never
// calls them, the dashboard and `faultmaven kb` do):
//
//	POST   /api/v1/knowledge/documents           upload (multipart; fields before the file)
//	GET    /api/v1/knowledge/documents           list what the caller may see
//	GET    /api/v1/knowledge/documents/{id}      one document with its text
//	DELETE /api/v1/knowledge/documents/{id}      delete (global documents: admins)
//	POST   /api/v1/knowledge/search              search (JSON SearchRequest)
//	POST   /api/v1/knowledge/documents/search    the same
//
// Visibility is decided by the knowledge base from the viewer: global
// documents, the caller's own, and those of cases the caller owns.

// KnowledgeService is what the gateway needs from the knowledge base.
type KnowledgeService interface {
	Upload(ctx context.Context, u embed.Upload) (embed.Document, bool, error)
	Get(ctx context.Context, v embed.Viewer, id string) (embed.Document, string, error)
	List(ctx context.Context, v embed.Viewer, q embed.ListQuery) ([]embed.Document, int, error)
	Delete(ctx context.Context, v embed.Viewer, id string) error
	DeleteCase(ctx context.Context, caseID string) (int, error)
	Search(ctx context.Context, v embed.Viewer, q embed.SearchQuery) ([]embed.Result, error)
}

var errNoKnowledge = &Error{CodeUnavailable, "The knowledge base is not configured on this server"}

func (s *Server) mountKnowledge(r chi.Router) {
	r.Post("/api/v1/knowledge/documents", s.handle(s.uploadDocument))
	r.Get("/api/v1/knowledge/documents", s.handle(s.listDocuments))
	r.Get("/api/v1/knowledge/documents/{document_id}", s.handle(s.getDocument))
	r.Delete("/api/v1/knowledge/documents/{document_id}", s.handle(s.deleteDocument))
	r.Post("/api/v1/knowledge/search", s.handle(s.searchKnowledge))
	r.Post("/api/v1/knowledge/documents/search", s.handle(s.searchKnowledge))
}

// viewer is the caller as the knowledge base sees them.
func (s *Server) viewer(r *http.Request) (embed.Viewer, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		return embed.Viewer{}, errNotAuthenticated
	}
	ctx := r.Context()
	return embed.Viewer{UserID: p.UserID, IsAdmin: p.IsAdmin(), CaseIDs: func(caseID string) bool {
		_, err := s.cases.Get(ctx, p.UserID, caseID)
		return err == nil
	}}, nil
}

// documentFields are the text fields of an upload; they must precede the
// file part, which is streamed into the knowledge base as it arrives.
type documentFields struct {
	Title, DocumentType, Category, Description, SourceURL, Scope, CaseID, Tags string
}

func (f *documentFields) set(name, v string) bool {
	switch name {
	case "title":
		f.Title = v
	case "document_type":
		f.DocumentType = v
	case "category":
		f.Category = v
	case "description":
		f.Description = v
	case "source_url":
		f.SourceURL = v
	case "scope":
		f.Scope = v
	case "case_id":
		f.CaseID = v
	case "tags":
		f.Tags = v
	default:
		return false
	}
	return true
}

func splitTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (s *Server) uploadDocument(w http.ResponseWriter, r *http.Request) error {
	if s.knowledge == nil {
		return errNoKnowledge
	}
	v, err := s.viewer(r)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return &Error{CodeMalformedForm, "Upload a document as multipart/form-data with a file part named \"file\""}
	}
	var (
		doc    embed.Document
		dup    bool
		stored bool
	)
	err = parseDocumentMultipart(mr, func(f documentFields, p *multipart.Part) error {
		var err error
		doc, dup, err = s.storeDocument(r.Context(), v, f, p)
		stored = err == nil
		return err
	})
	if err != nil {
		// The file part is stored as it streams; a form that turns out bad
		// after it (a field too late, a second file, a broken body) must
		// leave nothing behind. A re-upload of an existing document created
		// nothing, so there is nothing to remove.
		if stored && !dup {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), discardTimeout)
			defer cancel()
			if derr := s.knowledge.Delete(ctx, v, doc.DocumentID); derr != nil {
				info := infoFrom(r.Context())
				info.logger().Warn("document of a failed upload not removed", zap.String("request_id", info.id),
					zap.String("document_id", doc.DocumentID), zap.Error(derr))
			}
		}
		return err
	}
	writeJSON(w, http.StatusCreated, documentResponse{Document: doc, Duplicate: dup})
	return nil
}

// parseDocumentMultipart reads a knowledge upload: text fields first, then
// one part named "file", handed to store as it arrives. Errors are *Error
// (400 malformed, 422), whatever store returned, or an
// *http.MaxBytesError.
func parseDocumentMultipart(mr *multipart.Reader, store func(f documentFields, p *multipart.Part) error) error {
	var f documentFields
	done := false
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return formError(err)
		}
		if parts >= maxFormParts {
			return validation(fmt.Sprintf("an upload has at most %d form fields", maxFormParts))
		}
		name := p.FormName()
		if name == "file" {
			if done {
				return validation("upload one document per request")
			}
			if err := store(f, p); err != nil {
				return err
			}
			done = true
			continue
		}
		if done {
			return validation("send the document's fields before the file part")
		}
		val, err := readText(name, p, maxDocField)
		if err != nil {
			return err
		}
		f.set(name, strings.TrimSpace(val)) // unknown fields are ignored, like unknown JSON fields
	}
	if !done {
		return validation(`the upload needs a file part named "file"`)
	}
	return nil
}

// maxDocField caps a document's text fields (a description may be long).
const maxDocField = 8192

func (s *Server) storeDocument(ctx context.Context, v embed.Viewer, f documentFields, p *multipart.Part) (embed.Document, bool, error) {
	scope := embed.Scope(f.Scope)
	if scope == "" {
		scope = "user"
	}
	if scope == "case" && (f.CaseID == "" || !v.CaseIDs(f.CaseID)) {
		return embed.Document{}, false, errCaseNotFound
	}
	docType := f.DocumentType
	if docType == "" {
		docType = "document"
	}
	return s.knowledge.Upload(ctx, embed.Upload{
		Owner: v.UserID, Admin: v.IsAdmin, Scope: scope, CaseID: f.CaseID, Title: f.Title,
		DocumentType: docType, Category: f.Category, Description: f.Description, SourceURL: f.SourceURL,
		Filename: p.FileName(), Tags: splitTags(f.Tags), Body: partBody{p},
	})
}

type documentResponse struct {
	embed.Document
	Duplicate bool   `json:"duplicate"`
	Content   string `json:"content,omitempty"`
}

type documentList struct {
	Documents  []embed.Document `json:"documents"`
	TotalCount int              `json:"total_count"`
	Limit      int              `json:"limit"`
	Offset     int              `json:"offset"`
}

func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request) error {
	if s.knowledge == nil {
		return errNoKnowledge
	}
	v, err := s.viewer(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	p, err := parsePage(q)
	if err != nil {
		return err
	}
	docs, total, err := s.knowledge.List(r.Context(), v, embed.ListQuery{
		DocumentType: q.Get("document_type"), Scope: q.Get("scope"), Tags: splitTags(q.Get("tags")),
		Limit: p.Limit, Offset: p.Offset,
	})
	if err != nil {
		return err
	}
	if docs == nil {
		docs = []embed.Document{}
	}
	writeJSON(w, http.StatusOK, documentList{Documents: docs, TotalCount: total, Limit: p.Limit, Offset: p.Offset})
	return nil
}

func (s *Server) getDocument(w http.ResponseWriter, r *http.Request) error {
	if s.knowledge == nil {
		return errNoKnowledge
	}
	v, err := s.viewer(r)
	if err != nil {
		return err
	}
	doc, text, err := s.knowledge.Get(r.Context(), v, chi.URLParam(r, "document_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, documentResponse{Document: doc, Content: text})
	return nil
}

func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request) error {
	if s.knowledge == nil {
		return errNoKnowledge
	}
	v, err := s.viewer(r)
	if err != nil {
		return err
	}
	if err := s.knowledge.Delete(r.Context(), v, chi.URLParam(r, "document_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// searchRequest is the contract's SearchRequest (§6.3).
type searchRequest struct {
	Query        string   `json:"query"`
	Limit        int      `json:"limit"`
	DocumentType string   `json:"document_type"`
	Category     string   `json:"category"`
	Tags         []string `json:"tags"`
	CaseID       string   `json:"case_id"`
}

type searchResult struct {
	DocumentID      string         `json:"document_id"`
	Content         string         `json:"content"`
	Metadata        map[string]any `json:"metadata"`
	SimilarityScore float64        `json:"similarity_score"`
}

type searchResponse struct {
	Query        string         `json:"query"`
	TotalResults int            `json:"total_results"`
	Results      []searchResult `json:"results"`
}

func (s *Server) searchKnowledge(w http.ResponseWriter, r *http.Request) error {
	if s.knowledge == nil {
		return errNoKnowledge
	}
	v, err := s.viewer(r)
	if err != nil {
		return err
	}
	var req searchRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	req.Query = strings.TrimSpace(req.Query)
	if req.Query == "" || len(req.Query) > 2000 {
		return validation("query is required (1-2000 characters)")
	}
	if req.Limit < 0 || req.Limit > 50 {
		return validation("limit must be between 1 and 50")
	}
	hits, err := s.knowledge.Search(r.Context(), v, embed.SearchQuery{
		Query: req.Query, Limit: req.Limit, CaseID: req.CaseID, DocumentType: req.DocumentType,
		Category: req.Category, Tags: req.Tags,
	})
	if err != nil {
		return err
	}
	resp := searchResponse{Query: req.Query, TotalResults: len(hits), Results: make([]searchResult, 0, len(hits))}
	for _, h := range hits {
		resp.Results = append(resp.Results, searchResult{
			DocumentID: h.DocumentID, Content: h.Snippet, SimilarityScore: h.Score,
			Metadata: map[string]any{
				"title": h.Title, "document_type": h.DocumentType, "category": h.Category, "tags": nonNilSlice(h.Tags),
				"heading_path": nonNilSlice(h.HeadingPath), "filename": h.Filename, "source_url": h.SourceURL, "chunk_id": h.ChunkID,
			},
		})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// NewKnowledgeSource adapts the knowledge base to the case actors: a case's
// turn searches as the case's owner, seeing global documents, the owner's
// own and those of this case.
func NewKnowledgeSource(kb KnowledgeService) actors.KnowledgeSource { return knowledgeSource{kb: kb} }

type knowledgeSource struct{ kb KnowledgeService }

func (k knowledgeSource) Search(ctx context.Context, owner, caseID, query string, limit int) ([]agent.Source, error) {
	hits, err := k.kb.Search(ctx, embed.Viewer{UserID: owner, CaseIDs: func(id string) bool { return id == caseID }},
		embed.SearchQuery{Query: query, Limit: limit, CaseID: caseID})
	if err != nil {
		return nil, err
	}
	out := make([]agent.Source, 0, len(hits))
	for _, h := range hits {
		title := h.Title
		if len(h.HeadingPath) > 1 {
			title += " › " + strings.Join(h.HeadingPath[1:], " › ")
		}
		out = append(out, agent.Source{DocumentID: h.DocumentID, Title: title, URL: h.SourceURL, Snippet: h.Snippet})
	}
	return out, nil
}
