package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/embed"
)

const runbook = `# Nginx 502 runbook

## Symptoms
Clients get 502 Bad Gateway; the error log says "upstream timed out (110) while reading response header".

## Resolution
Raise proxy_read_timeout and check the upstream pool size.
`

func (e *env) uploadDoc(token, filename, content string, fields ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var parts []formPart
	for i := 0; i+1 < len(fields); i += 2 {
		parts = append(parts, formPart{name: fields[i], content: fields[i+1]})
	}
	parts = append(parts, formPart{name: "file", filename: filename, content: content})
	body, ctype := multipartBody(e.t.(*testing.T), parts...)
	return e.call("POST", "/api/v1/knowledge/documents", token, body, "Content-Type", ctype)
}

func (e *env) waitReady(token, id string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := e.call("GET", "/api/v1/knowledge/documents/"+id, token, "")
		wantStatus(e.t, rec, http.StatusOK)
		if d := decode[map[string]any](e.t, rec); d["status"] == "ready" {
			return
		} else if d["status"] == "failed" || time.Now().After(deadline) {
			e.t.Fatalf("document %s: %v", id, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type kbSearch struct {
	TotalResults int `json:"total_results"`
	Results      []struct {
		DocumentID string         `json:"document_id"`
		Content    string         `json:"content"`
		Metadata   map[string]any `json:"metadata"`
	} `json:"results"`
}

func (e *env) searchKB(token, query string) kbSearch {
	e.t.Helper()
	rec := e.call("POST", "/api/v1/knowledge/search", token, `{"query":`+jsonString(query)+`,"limit":5}`)
	wantStatus(e.t, rec, http.StatusOK)
	return decode[kbSearch](e.t, rec)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestKnowledgeRoutesAndScopes(t *testing.T) {
	e := newEnv(t, Config{}, onDisk)
	admin := e.register("alice").AccessToken // the first account is admin
	bob := e.register("bob").AccessToken

	// A private runbook of bob's, and a global one by the admin.
	rec := e.uploadDoc(bob, "nginx-502.md", runbook, "title", "Nginx 502 runbook", "document_type", "runbook", "tags", "nginx, http")
	wantStatus(t, rec, http.StatusCreated)
	mine := decode[map[string]any](t, rec)
	if mine["status"] != "processing" || mine["scope"] != "user" || mine["document_id"] == "" {
		t.Fatalf("upload: %v", mine)
	}
	id := mine["document_id"].(string)
	e.waitReady(bob, id)

	wantStatus(t, e.uploadDoc(bob, "g.md", "# Global\n\ndisk full on /var", "scope", "global"), http.StatusForbidden)
	rec = e.uploadDoc(admin, "disk.md", "# Disk full runbook\n\nNo space left on device: clean /var/log", "scope", "global", "document_type", "runbook")
	wantStatus(t, rec, http.StatusCreated)
	global := decode[map[string]any](t, rec)["document_id"].(string)
	e.waitReady(admin, global)

	got := e.searchKB(bob, "upstream timed out 502")
	if got.TotalResults == 0 || got.Results[0].DocumentID != id || got.Results[0].Metadata["title"] != "Nginx 502 runbook" {
		t.Fatalf("bob's search: %+v", got)
	}
	if hits := e.searchKB(admin, "upstream timed out 502"); hits.TotalResults != 0 {
		t.Fatalf("another user's private document leaked into search: %+v", hits)
	}
	if hits := e.searchKB(bob, "no space left on device"); hits.TotalResults == 0 || hits.Results[0].DocumentID != global {
		t.Fatalf("global documents are for everyone: %+v", hits)
	}
	wantStatus(t, e.call("GET", "/api/v1/knowledge/documents/"+id, admin, ""), http.StatusNotFound)
	wantStatus(t, e.call("DELETE", "/api/v1/knowledge/documents/"+id, admin, ""), http.StatusNotFound)
	wantStatus(t, e.call("DELETE", "/api/v1/knowledge/documents/"+global, bob, ""), http.StatusForbidden)

	list := decode[map[string]any](t, e.call("GET", "/api/v1/knowledge/documents", bob, ""))
	if list["total_count"] != float64(2) {
		t.Fatalf("bob lists %v", list)
	}
	detail := decode[map[string]any](t, e.call("GET", "/api/v1/knowledge/documents/"+id, bob, ""))
	if !strings.Contains(detail["content"].(string), "proxy_read_timeout") {
		t.Fatalf("detail without content: %v", detail)
	}

	// Bad input.
	wantStatus(t, e.uploadDoc(bob, "x.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), http.StatusUnsupportedMediaType)
	body, ctype := multipartBody(t, formPart{name: "file", filename: "a.md", content: "# A"}, formPart{name: "title", content: "late"})
	wantStatus(t, e.call("POST", "/api/v1/knowledge/documents", bob, body, "Content-Type", ctype), http.StatusUnprocessableEntity)
	wantStatus(t, e.call("POST", "/api/v1/knowledge/search", bob, `{"query":""}`), http.StatusUnprocessableEntity)

	wantStatus(t, e.call("DELETE", "/api/v1/knowledge/documents/"+id, bob, ""), http.StatusNoContent)
	if hits := e.searchKB(bob, "upstream timed out 502"); hits.TotalResults != 0 {
		t.Fatalf("a deleted document is still found: %+v", hits)
	}
}

// TestFailedKnowledgeUploadLeavesNothing: the file part is stored as it
// streams, so a form that turns out bad after it (a field too late, a
// second file) must remove the new document; a re-upload of an existing
// one must not remove the original.
func TestFailedKnowledgeUploadLeavesNothing(t *testing.T) {
	e := newEnv(t, Config{})
	tok := e.register("bob").AccessToken
	total := func() any {
		return decode[map[string]any](t, e.call("GET", "/api/v1/knowledge/documents", tok, ""))["total_count"]
	}
	for _, tc := range []struct {
		name  string
		parts []formPart
		want  string
	}{
		{"field after the file", []formPart{{name: "file", filename: "a.md", content: "# Disk full\nClean /var/log."},
			{name: "title", content: "late"}}, "fields before the file part"},
		{"two files", []formPart{{name: "title", content: "two"}, {name: "file", filename: "b.md", content: "# B\nbody b"},
			{name: "file", filename: "c.md", content: "# C\nbody c"}}, "one document per request"},
	} {
		body, ctype := multipartBody(t, tc.parts...)
		rec := e.call("POST", "/api/v1/knowledge/documents", tok, body, "Content-Type", ctype)
		wantStatus(t, rec, http.StatusUnprocessableEntity)
		if !strings.Contains(rec.Body.String(), tc.want) {
			t.Fatalf("%s: %s", tc.name, rec.Body)
		}
		if n := total(); n != float64(0) {
			t.Fatalf("%s: the failed upload left %v documents", tc.name, n)
		}
	}

	rec := e.uploadDoc(tok, "runbook.md", runbook, "title", "502 runbook")
	wantStatus(t, rec, http.StatusCreated)
	id := decode[map[string]any](t, rec)["document_id"].(string)
	body, ctype := multipartBody(t, formPart{name: "file", filename: "again.md", content: runbook}, formPart{name: "title", content: "late"})
	wantStatus(t, e.call("POST", "/api/v1/knowledge/documents", tok, body, "Content-Type", ctype), http.StatusUnprocessableEntity)
	wantStatus(t, e.call("GET", "/api/v1/knowledge/documents/"+id, tok, ""), http.StatusOK)
	if n := total(); n != float64(1) {
		t.Fatalf("after a failed re-upload: %v documents, want the original alone", n)
	}
}

// TestDeletingACaseDeletesItsDocuments: the knowledge documents scoped to
// a case go with the case, as its evidence does; the owner's other
// documents stay.
func TestDeletingACaseDeletesItsDocuments(t *testing.T) {
	e := newEnv(t, Config{})
	tok := e.register("bob").AccessToken
	rec := e.call("POST", "/api/v1/cases", tok, `{"title":"cache outage"}`)
	wantStatus(t, rec, http.StatusCreated)
	caseID := decode[map[string]any](t, rec)["case_id"].(string)
	rec = e.uploadDoc(tok, "note.md", "# Case note\nThe wombatcache needs a restart.", "scope", "case", "case_id", caseID)
	wantStatus(t, rec, http.StatusCreated)
	caseDoc := decode[map[string]any](t, rec)["document_id"].(string)
	rec = e.uploadDoc(tok, "mine.md", "# Mine\nwombatcache tuning notes.")
	wantStatus(t, rec, http.StatusCreated)
	userDoc := decode[map[string]any](t, rec)["document_id"].(string)

	wantStatus(t, e.call("DELETE", "/api/v1/cases/"+caseID, tok, ""), http.StatusNoContent)
	all := embed.Viewer{UserID: "x", IsAdmin: true, CaseIDs: func(string) bool { return true }}
	if _, _, err := e.kb.Get(context.Background(), all, caseDoc); !errors.Is(err, embed.ErrNotFound) {
		t.Fatalf("the deleted case's document is still stored: %v", err)
	}
	wantStatus(t, e.call("GET", "/api/v1/knowledge/documents/"+userDoc, tok, ""), http.StatusOK)
}

// TestTurnCitesKnowledge: the agent's answer lists the runbook it was given
// as a markdown source, and the runbook's text reached the model as data.
func TestTurnCitesKnowledge(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	rec := e.uploadDoc(tok, "nginx-502.md", runbook, "title", "Nginx 502 runbook", "source_url", "https://wiki.example/nginx-502")
	wantStatus(t, rec, http.StatusCreated)
	e.waitReady(tok, decode[map[string]any](t, rec)["document_id"].(string))
	e.llm.SetDefault(llmtest.Reply{Content: "Raise proxy_read_timeout, as the runbook says."})
	id := e.newCase(tok)
	body, ctype := multipartBody(t, formPart{name: "query", content: "nginx: upstream timed out while reading response header"})
	rec = e.postTurn(tok, id, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	answer := decode[map[string]any](t, rec)["agent_response"].(string)
	if !strings.Contains(answer, "**Sources**") || !strings.Contains(answer, "Nginx 502 runbook") || !strings.Contains(answer, "https://wiki.example/nginx-502") {
		t.Fatalf("the answer must cite the runbook:\n%s", answer)
	}
	seen := false
	for _, req := range e.llm.Requests() {
		for _, m := range req.Messages {
			seen = seen || strings.Contains(m.Content, "Raise proxy_read_timeout and check the upstream pool size")
		}
	}
	if !seen {
		t.Fatal("the runbook never reached the model")
	}
}
