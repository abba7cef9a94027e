package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// SearchQuery is a knowledge-base search. Limit defaults to 10, max 50.
// CaseID adds that case's documents when the viewer may see the case.
type SearchQuery struct {
	Query        string
	Limit        int
	CaseID       string
	DocumentType string
	Category     string
	Tags         []string
}

// Result is one matching chunk.
type Result struct {
	DocumentID   string   `json:"document_id"`
	Title        string   `json:"title"`
	HeadingPath  []string `json:"heading_path,omitempty"`
	Snippet      string   `json:"snippet"`
	Score        float64  `json:"score"`
	ChunkID      string   `json:"chunk_id"`
	SourceURL    string   `json:"source_url,omitempty"`
	DocumentType string   `json:"document_type"`
	Category     string   `json:"category,omitempty"`
	Tags         []string `json:"tags"`
	Filename     string   `json:"filename,omitempty"`
}

// maxPerDocument caps the chunks one document contributes to a result list,
// so that one long runbook cannot fill it.
const maxPerDocument = 3

// Search ranks the chunks the viewer may see against q. Visibility and the
// type/category/tag filters are applied inside the index, before the top k
// are chosen, so hidden chunks never take a slot.
func (k *KB) Search(ctx context.Context, v Viewer, q SearchQuery) ([]Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.Query = strings.TrimSpace(q.Query)
	if q.Query == "" {
		return nil, fmt.Errorf("%w: query is required", ErrInvalidInput)
	}
	if len(q.Query) > 4000 {
		return nil, fmt.Errorf("%w: query longer than 4000 bytes", ErrInvalidInput)
	}
	if q.Limit <= 0 {
		q.Limit = 10
	}
	q.Limit = min(q.Limit, 50)
	tags := normTags(q.Tags)
	// Ask the viewer's case question once, outside the index lock.
	caseOK := q.CaseID != "" && v.CaseIDs != nil && v.CaseIDs(q.CaseID)
	qvec := k.queryVector(ctx, q.Query) // nil: lexical only

	k.mu.RLock()
	allowDoc := make(map[string]bool) // docID → visible and matching; the filter runs per chunk
	allow := func(chunkID string) bool {
		docID, _, ok := splitChunkID(chunkID)
		if !ok {
			return false
		}
		if a, seen := allowDoc[docID]; seen {
			return a
		}
		a := false
		if m, ok := k.docs[docID]; ok {
			d := &m.doc
			a = d.Status == StatusReady && k.visibleInSearch(v, d, q.CaseID, caseOK) &&
				(q.DocumentType == "" || d.DocumentType == q.DocumentType) &&
				(q.Category == "" || d.Category == q.Category) && hasAllTags(d.Tags, tags)
		}
		allowDoc[docID] = a
		return a
	}
	// Fetch enough chunks that the per-document cap still leaves Limit.
	hits := k.hyb.Search(q.Query, qvec, q.Limit*maxPerDocument, allow)
	type pick struct {
		doc   Document
		n     int
		score float64
		id    string
	}
	var picks []pick
	perDoc := map[string]int{}
	for _, h := range hits {
		docID, n, _ := splitChunkID(h.ID)
		if perDoc[docID] >= maxPerDocument {
			continue
		}
		perDoc[docID]++
		picks = append(picks, pick{doc: k.docs[docID].doc, n: n, score: h.Score, id: h.ID})
		if len(picks) == q.Limit {
			break
		}
	}
	k.mu.RUnlock()

	out := make([]Result, 0, len(picks))
	for _, p := range picks {
		raw, err := k.ks.Get(chunkKey(p.doc.DocumentID, p.n))
		if err != nil {
			continue // deleted between the search and now
		}
		var c storedChunk
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("embed: decode chunk %s: %w", p.id, err)
		}
		out = append(out, Result{
			DocumentID: p.doc.DocumentID, Title: p.doc.Title, HeadingPath: c.Heading,
			Snippet: snippet(c.Body, q.Query, 300), Score: p.score, ChunkID: p.id,
			SourceURL: p.doc.SourceURL, DocumentType: p.doc.DocumentType, Category: p.doc.Category,
			Tags: p.doc.Tags, Filename: p.doc.Filename,
		})
	}
	return out, nil
}

// visibleInSearch: global documents, the viewer's own user documents, and
// the documents of the one case named in the query if the viewer may see it.
func (k *KB) visibleInSearch(v Viewer, d *Document, caseID string, caseOK bool) bool {
	switch d.Scope {
	case ScopeGlobal:
		return true
	case ScopeUser:
		return v.UserID != "" && d.OwnerID == v.UserID
	case ScopeCase:
		return caseOK && d.CaseID == caseID
	}
	return false
}

// snippet returns about n bytes of body around the first query word it
// contains, cut at word boundaries.
func snippet(body, query string, n int) string {
	body = strings.Join(strings.Fields(body), " ")
	if len(body) <= n {
		return body
	}
	lower := strings.ToLower(body)
	at := -1
	for _, w := range strings.FieldsFunc(strings.ToLower(query), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len(w) < 3 {
			continue
		}
		if i := strings.Index(lower, w); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	start := 0
	if at > n/3 {
		start = at - n/3
	}
	end := min(len(body), start+n)
	if end == len(body) {
		start = max(0, end-n)
	}
	for start > 0 && start < end && body[start-1] != ' ' {
		start++
	}
	for end < len(body) && end > start && body[end-1] != ' ' {
		end--
	}
	s := strings.TrimSpace(body[start:end])
	if start > 0 {
		s = "…" + s
	}
	if end < len(body) {
		s += "…"
	}
	return s
}

// SearchDocuments returns the distinct documents of a search in rank order;
// it is what the evaluation scores.
func SearchDocuments(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !slices.ContainsFunc(out, func(o Result) bool { return o.DocumentID == r.DocumentID }) {
			out = append(out, r)
		}
	}
	return out
}
