package embed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/faultmaven/faultmaven/persistence"
)

// Scope says who may see a document.
type Scope string

// Scopes. Global documents are managed by admins and visible to everyone;
// user documents only to their owner; case documents to the viewers of
// their case.
const (
	ScopeGlobal Scope = "global"
	ScopeUser   Scope = "user"
	ScopeCase   Scope = "case"
)

// Document statuses.
const (
	StatusProcessing = "processing"
	StatusReady      = "ready"
	StatusFailed     = "failed"
)

// Viewer is who is asking. CaseIDs reports whether the viewer may see a
// case's documents; nil means no case at all.
type Viewer struct {
	UserID  string
	IsAdmin bool
	CaseIDs func(caseID string) bool
}

// Document is a knowledge-base document's metadata. JSON names follow the
// copilot contract §6.3 (KnowledgeBaseDocument).
type Document struct {
	DocumentID         string    `json:"document_id"`
	Title              string    `json:"title"`
	DocumentType       string    `json:"document_type"`
	Category           string    `json:"category,omitempty"`
	Description        string    `json:"description,omitempty"`
	SourceURL          string    `json:"source_url,omitempty"`
	Filename           string    `json:"filename,omitempty"`
	OwnerID            string    `json:"owner_id,omitempty"`
	CaseID             string    `json:"case_id,omitempty"`
	Scope              Scope     `json:"scope"`
	Tags               []string  `json:"tags"`
	Status             string    `json:"status"`
	Error              string    `json:"error,omitempty"`
	SHA256             string    `json:"sha256"`
	SizeBytes          int64     `json:"size_bytes"`
	Chunks             int       `json:"chunks"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	VerificationStatus string    `json:"verification_status,omitempty"`
	Format             string    `json:"format,omitempty"` // detected at upload: markdown, text, html, json, yaml, csv, log
}

// Upload is a new document. Body is read once, up to Config.MaxDocBytes.
type Upload struct {
	Owner        string
	Admin        bool
	Scope        Scope // default user
	CaseID       string
	Title        string
	DocumentType string
	Category     string
	Description  string
	SourceURL    string
	Filename     string
	Tags         []string
	Body         io.Reader
}

// ListQuery filters List. Zero fields match everything; Limit defaults to 50
// (max 500).
type ListQuery struct {
	DocumentType string
	Scope        string
	Tags         []string
	Limit        int
	Offset       int
}

// job is the durable record of an ingestion still to do.
type job struct {
	DocumentID string `json:"document_id"`
	Digest     string `json:"digest"`
	Format     string `json:"format"`
}

// Upload stores the body as a blob and writes the document (status
// processing), its dedupe entry and its ingestion job in one synced batch,
// then returns; a worker does the rest. When the same content was already
// uploaded to the same scope, owner and case, the existing document is
// returned with duplicate=true.
func (k *KB) Upload(ctx context.Context, u Upload) (Document, bool, error) {
	if err := ctx.Err(); err != nil {
		return Document{}, false, err
	}
	if u.Scope == "" {
		u.Scope = ScopeUser
	}
	if err := validateUpload(&u); err != nil {
		return Document{}, false, err
	}
	if u.Body == nil {
		return Document{}, false, ErrEmpty
	}
	br := bufio.NewReaderSize(u.Body, sniffLen)
	head, err := br.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return Document{}, false, fmt.Errorf("embed: read upload: %w", err)
	}
	if len(strings.TrimSpace(string(head))) == 0 && len(head) < sniffLen {
		return Document{}, false, ErrEmpty
	}
	format, err := detectFormat(head, u.Filename)
	if err != nil {
		return Document{}, false, err
	}
	info, err := k.blobs.Put(br, k.cfg.MaxDocBytes)
	if errors.Is(err, persistence.ErrTooLarge) {
		return Document{}, false, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, k.cfg.MaxDocBytes)
	}
	if err != nil {
		return Document{}, false, fmt.Errorf("embed: store upload: %w", err)
	}
	if u.Title == "" {
		u.Title = titleFor(u.Filename, head, format)
	}
	owner := u.Owner
	if u.Scope == ScopeGlobal {
		owner = "" // global documents belong to the admins together
	}
	hkey := []byte(fmt.Sprintf("%s%s/%s/%s/%s", prefixHash, u.Scope, owner, u.CaseID, info.Digest))

	k.mu.Lock()
	defer k.mu.Unlock()
	if k.isClosed() {
		return Document{}, false, errClosed
	}
	if id, err := k.ks.Get(hkey); err == nil {
		if m, ok := k.docs[string(id)]; ok {
			return m.doc, true, nil
		}
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return Document{}, false, fmt.Errorf("embed: dedupe lookup: %w", err)
	}
	now := k.cfg.Now().UTC()
	d := Document{
		DocumentID: "kb_" + strings.ToLower(ulid.Make().String()),
		Title:      u.Title, DocumentType: u.DocumentType, Category: u.Category,
		Description: u.Description, SourceURL: u.SourceURL, Filename: u.Filename,
		OwnerID: u.Owner, CaseID: u.CaseID, Scope: u.Scope, Tags: normTags(u.Tags),
		Status: StatusProcessing, SHA256: info.Digest, SizeBytes: info.Size,
		CreatedAt: now, UpdatedAt: now, VerificationStatus: "community", Format: format,
	}
	if u.Scope == ScopeGlobal {
		d.VerificationStatus = "verified"
	}
	dj, _ := json.Marshal(d)
	jj, _ := json.Marshal(job{DocumentID: d.DocumentID, Digest: info.Digest, Format: format})
	b := k.ks.NewBatch()
	defer b.Close()
	_ = b.Set(docKey(d.DocumentID), dj)
	_ = b.Set(jobKey(d.DocumentID), jj)
	_ = b.Set(hkey, []byte(d.DocumentID))
	if err := b.Commit(true); err != nil {
		return Document{}, false, fmt.Errorf("embed: save document: %w", err)
	}
	k.docs[d.DocumentID] = &docMeta{doc: d}
	k.enqueue(d.DocumentID)
	return d, false, nil
}

func (k *KB) isClosed() bool {
	k.qmu.Lock()
	defer k.qmu.Unlock()
	return k.closed
}

func validateUpload(u *Upload) error {
	switch u.Scope {
	case ScopeGlobal:
		if !u.Admin {
			return fmt.Errorf("%w: only admins may add global documents", ErrForbidden)
		}
	case ScopeUser:
	case ScopeCase:
		if u.CaseID == "" {
			return fmt.Errorf("%w: a case document needs a case id", ErrInvalidInput)
		}
	default:
		return fmt.Errorf("%w: scope %q (want global, user or case)", ErrInvalidInput, u.Scope)
	}
	if u.Owner == "" {
		return fmt.Errorf("%w: owner is required", ErrInvalidInput)
	}
	if u.Scope != ScopeCase {
		u.CaseID = ""
	}
	if len(u.Title) > 500 || len(u.Description) > 10000 || len(u.SourceURL) > 2000 || len(u.Tags) > 50 {
		return fmt.Errorf("%w: title, description, source_url or tags too long", ErrInvalidInput)
	}
	if u.DocumentType == "" {
		u.DocumentType = "document"
	}
	return nil
}

func normTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// visible reports whether v may see d.
func (v Viewer) visible(d *Document) bool {
	switch d.Scope {
	case ScopeGlobal:
		return true
	case ScopeUser:
		return v.UserID != "" && d.OwnerID == v.UserID
	case ScopeCase:
		return d.CaseID != "" && v.CaseIDs != nil && v.CaseIDs(d.CaseID)
	}
	return false
}

// Get returns a document the viewer may see and its extracted text (empty
// until the document is ready). An invisible document is ErrNotFound.
func (k *KB) Get(ctx context.Context, v Viewer, id string) (Document, string, error) {
	if err := ctx.Err(); err != nil {
		return Document{}, "", err
	}
	k.mu.RLock()
	m, ok := k.docs[id]
	var d Document
	if ok {
		d = m.doc
	}
	k.mu.RUnlock()
	if !ok || !v.visible(&d) {
		return Document{}, "", ErrNotFound
	}
	text, err := k.ks.Get(textKey(id))
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return Document{}, "", fmt.Errorf("embed: load text of %s: %w", id, err)
	}
	return d, string(text), nil
}

// List returns the documents the viewer may see that match q, newest
// first, and the total number of matches before paging.
func (k *KB) List(ctx context.Context, v Viewer, q ListQuery) ([]Document, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	q.Offset = max(q.Offset, 0)
	tags := normTags(q.Tags)
	k.mu.RLock()
	all := make([]Document, 0, len(k.docs))
	for _, m := range k.docs {
		all = append(all, m.doc)
	}
	k.mu.RUnlock()
	var out []Document
	for i := range all {
		d := &all[i]
		if !v.visible(d) || (q.Scope != "" && string(d.Scope) != q.Scope) ||
			(q.DocumentType != "" && d.DocumentType != q.DocumentType) || !hasAllTags(d.Tags, tags) {
			continue
		}
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].DocumentID > out[j].DocumentID
	})
	total := len(out)
	if q.Offset >= total {
		return []Document{}, total, nil
	}
	return out[q.Offset:min(total, q.Offset+q.Limit)], total, nil
}

// DeleteCase removes every document scoped to the case, as Delete does
// each, and returns how many. The gateway calls it when the case is
// deleted: the case's documents go with it, as its evidence does. A
// failure leaves the rest for a later call.
func (k *KB) DeleteCase(ctx context.Context, caseID string) (int, error) {
	if caseID == "" {
		return 0, nil
	}
	k.mu.RLock()
	var ids []string
	for id, m := range k.docs {
		if m.doc.Scope == ScopeCase && m.doc.CaseID == caseID {
			ids = append(ids, id)
		}
	}
	k.mu.RUnlock()
	v := Viewer{CaseIDs: func(id string) bool { return id == caseID }}
	n := 0
	for _, id := range ids {
		switch err := k.Delete(ctx, v, id); {
		case err == nil:
			n++
		case errors.Is(err, ErrNotFound): // deleted meanwhile
		default:
			return n, err
		}
	}
	return n, nil
}

func hasAllTags(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// Delete removes a document, its chunks, text, job and dedupe entry in one
// synced batch and drops its chunks from the index in the same locked step.
// A document the viewer cannot see is ErrNotFound; a global one needs an
// admin (ErrForbidden).
func (k *KB) Delete(ctx context.Context, v Viewer, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	m, ok := k.docs[id]
	if !ok || !v.visible(&m.doc) {
		return ErrNotFound
	}
	d := m.doc
	if d.Scope == ScopeGlobal && !v.IsAdmin {
		return fmt.Errorf("%w: only admins may delete global documents", ErrForbidden)
	}
	owner := d.OwnerID
	if d.Scope == ScopeGlobal {
		owner = ""
	}
	b := k.ks.NewBatch()
	defer b.Close()
	_ = b.Delete(docKey(id))
	_ = b.Delete(textKey(id))
	_ = b.Delete(jobKey(id))
	_ = b.DeletePrefix(chunkPrefix(id))
	_ = b.DeletePrefix(vecPrefix(id))
	_ = b.Delete([]byte(fmt.Sprintf("%s%s/%s/%s/%s", prefixHash, d.Scope, owner, d.CaseID, d.SHA256)))
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("embed: delete %s: %w", id, err)
	}
	for n := 0; n < d.Chunks; n++ {
		k.lex.Remove(ChunkID(id, n))
		if k.vec != nil {
			k.vec.Remove(ChunkID(id, n))
		}
	}
	delete(k.docs, id)
	// The blob is content-addressed: keep it while another document uses it.
	shared := false
	for _, o := range k.docs {
		if o.doc.SHA256 == d.SHA256 {
			shared = true
			break
		}
	}
	if !shared {
		_ = k.blobs.Delete(d.SHA256)
	}
	return nil
}
