package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// rowKeys are the fields of a case row (contract §9 item 10).
var rowKeys = []string{"case_id", "closed_at", "closure_reason", "created_at", "current_turn", "description",
	"organization_id", "resolved_at", "state", "title", "updated_at", "user_id"}

func wantKeys(t *testing.T, what string, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Fatalf("%s lacks %q: %v", what, k, obj)
		}
	}
}

func TestCaseFlow(t *testing.T) {
	e := newEnv(t, Config{})
	e.register("ivan")
	rec := e.call("POST", "/api/v1/auth/login", "", `{"username":"ivan","password":"`+testPassword+`"}`)
	wantStatus(t, rec, http.StatusOK)
	tok := decode[tokenResponse](t, rec).AccessToken

	// Create with a null title: 201, flat row, placeholder title.
	const key = "opt_case_1716400000000_1"
	createBody := `{"title":null,"priority":"low","metadata":{"created_via":"browser_extension","auto_generated":true}}`
	rec = e.call("POST", "/api/v1/cases", tok, createBody, "Idempotency-Key", key, "X-Session-Id", "s")
	wantStatus(t, rec, http.StatusCreated)
	created := decode[map[string]any](t, rec)
	wantKeys(t, "created row", created, rowKeys...)
	id, _ := created["case_id"].(string)
	title, _ := created["title"].(string)
	if id == "" || !regexp.MustCompile(`^Case-\d{6}-\d+$`).MatchString(title) || created["state"] != "inquiry" {
		t.Fatalf("created: %v", created)
	}
	if rec.Header().Get("Location") != "/api/v1/cases/"+id {
		t.Fatalf("Location %q", rec.Header().Get("Location"))
	}
	// The same key replays the same case; a malformed key is refused.
	replay := decode[map[string]any](t, e.call("POST", "/api/v1/cases", tok, createBody, "Idempotency-Key", key))
	if replay["case_id"] != id {
		t.Fatalf("idempotent replay made case %v, want %s", replay["case_id"], id)
	}
	wantError(t, e.call("POST", "/api/v1/cases", tok, createBody, "Idempotency-Key", "short"),
		http.StatusUnprocessableEntity, CodeValidation)
	wantError(t, e.call("POST", "/api/v1/cases", tok, `{"priority":"urgent"}`),
		http.StatusUnprocessableEntity, CodeValidation)

	// List.
	rec = e.call("GET", "/api/v1/cases?limit=100&offset=0", tok, "")
	wantStatus(t, rec, http.StatusOK)
	list := decode[map[string]any](t, rec)
	wantKeys(t, "list", list, "cases", "total_count", "limit", "offset", "has_more")
	rows, _ := list["cases"].([]any)
	if len(rows) != 1 || list["total_count"] != float64(1) || list["has_more"] != false || list["limit"] != float64(100) {
		t.Fatalf("list: %v", list)
	}
	wantKeys(t, "listed row", rows[0].(map[string]any), rowKeys...)
	wantError(t, e.call("GET", "/api/v1/cases?limit=0", tok, ""), http.StatusUnprocessableEntity, CodeValidation)
	wantError(t, e.call("GET", "/api/v1/cases?limit=101", tok, ""), http.StatusUnprocessableEntity, CodeValidation)

	// Detail.
	got := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, tok, ""))
	if got["case_id"] != id || got["title"] != title {
		t.Fatalf("get: %v", got)
	}

	// /ui in inquiry: arrays, not nulls; no progress.
	ui := getUI(t, e, tok, id)
	wantKeys(t, "/ui", ui, "case_id", "title", "state", "created_at", "updated_at", "current_turn",
		"uploaded_files_count", "valid_next_states", "status_history", "degraded")
	if ui["state"] != "inquiry" || !reflect.DeepEqual(ui["valid_next_states"], []any{"investigating", "resolved", "closed"}) ||
		!reflect.DeepEqual(ui["status_history"], []any{}) {
		t.Fatalf("/ui inquiry: %v", ui)
	}
	if _, ok := ui["progress"]; ok {
		t.Fatalf("progress outside investigating: %v", ui)
	}

	// Investigating: progress is required.
	rec = e.call("POST", "/api/v1/cases/"+id+"/status", tok, `{"to_state":"investigating","reason":"needs a root cause"}`)
	wantStatus(t, rec, http.StatusOK)
	if decode[map[string]any](t, rec)["state"] != "investigating" {
		t.Fatalf("status change: %s", rec.Body)
	}
	ui = getUI(t, e, tok, id)
	want := map[string]any{"current_stage": "diagnosis", "completed_indicators": []any{},
		"total_evidence": float64(0), "active_hypotheses": float64(0), "turns_without_progress": float64(0)}
	if !reflect.DeepEqual(ui["progress"], want) {
		t.Fatalf("progress %v, want %v", ui["progress"], want)
	}

	// Rename.
	rec = e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"  Disk full on db-1  "}`)
	wantStatus(t, rec, http.StatusOK)
	if decode[map[string]any](t, rec)["title"] != "Disk full on db-1" {
		t.Fatalf("rename: %s", rec.Body)
	}
	wantError(t, e.call("PUT", "/api/v1/cases/"+id, tok, `{"title":"   "}`), http.StatusUnprocessableEntity, CodeValidation)
	rec = e.call("POST", "/api/v1/cases/"+id+"/title", tok, `{"max_words":8}`)
	wantStatus(t, rec, http.StatusOK)
	if rec.Header().Get("X-Title-Source") != "existing" ||
		!reflect.DeepEqual(decode[map[string]any](t, rec), map[string]any{"title": "Disk full on db-1", "schema_version": "1.0"}) {
		t.Fatalf("title: %v %s", rec.Header(), rec.Body)
	}

	// Messages: an empty conversation is an empty array.
	rec = e.call("GET", "/api/v1/cases/"+id+"/messages?limit=100", tok, "")
	wantStatus(t, rec, http.StatusOK)
	msgs := decode[map[string]any](t, rec)
	if !reflect.DeepEqual(msgs, map[string]any{"messages": []any{}, "total_count": float64(0),
		"retrieved_count": float64(0), "has_more": false}) {
		t.Fatalf("messages: %v", msgs)
	}
	wantError(t, e.call("GET", "/api/v1/cases/"+id+"/messages?limit=500", tok, ""), http.StatusUnprocessableEntity, CodeValidation)

	// Close with a reason.
	rec = e.call("POST", "/api/v1/cases/"+id+"/close", tok, `{"closure_reason":"closed_insufficient_evidence","reason":"no more data"}`)
	wantStatus(t, rec, http.StatusOK)
	closed := decode[map[string]any](t, rec)
	if closed["state"] != "closed" || closed["closure_reason"] != "closed_insufficient_evidence" || closed["closed_at"] == nil {
		t.Fatalf("closed row: %v", closed)
	}
	ui = getUI(t, e, tok, id)
	wantKeys(t, "/ui closed", ui, "closure_reason", "closed_at", "resolved_at")
	if ui["state"] != "closed" || ui["closure_reason"] != "closed_insufficient_evidence" || ui["closed_at"] == nil ||
		!reflect.DeepEqual(ui["valid_next_states"], []any{}) {
		t.Fatalf("/ui closed: %v", ui)
	}
	history := ui["status_history"].([]any)
	if len(history) != 2 {
		t.Fatalf("status history %v, want 2 entries", history)
	}
	wantKeys(t, "history entry", history[1].(map[string]any), "from", "to", "at", "by", "reason")

	// Closing again is refused and changes nothing.
	wantError(t, e.call("POST", "/api/v1/cases/"+id+"/close", tok, `{"reason":"again"}`), http.StatusConflict, CodeInvalidTransition)
	wantError(t, e.call("POST", "/api/v1/cases/"+id+"/status", tok, `{"to_state":"investigating"}`), http.StatusConflict, CodeInvalidTransition)
	if after := getUI(t, e, tok, id); !reflect.DeepEqual(after["status_history"], ui["status_history"]) {
		t.Fatalf("history changed by a refused transition:\n%v\n%v", after["status_history"], ui["status_history"])
	}
	// The list shows the closure (the extension reads it from the row).
	rows = decode[map[string]any](t, e.call("GET", "/api/v1/cases?limit=100", tok, ""))["cases"].([]any)
	if rows[0].(map[string]any)["closure_reason"] != "closed_insufficient_evidence" {
		t.Fatalf("list row lacks the closure: %v", rows[0])
	}

	// Delete: 204, then gone.
	rec = e.call("DELETE", "/api/v1/cases/"+id, tok, "")
	wantStatus(t, rec, http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Fatalf("204 with a body: %q", rec.Body)
	}
	wantError(t, e.call("GET", "/api/v1/cases/"+id, tok, ""), http.StatusNotFound, CodeCaseNotFound)
	if list := decode[map[string]any](t, e.call("GET", "/api/v1/cases", tok, "")); !reflect.DeepEqual(list["cases"], []any{}) {
		t.Fatalf("list after delete: %v", list)
	}
}

func getUI(t *testing.T, e *env, tok, id string) map[string]any {
	t.Helper()
	rec := e.call("GET", "/api/v1/cases/"+id+"/ui", tok, "")
	wantStatus(t, rec, http.StatusOK)
	return decode[map[string]any](t, rec)
}

var routeParam = regexp.MustCompile(`\{[^}]+\}`)

// TestCaseRoutesIDOR walks the router, so a case route added later (by this
// package or one mounting on CaseRouter) is covered without editing it.
func TestCaseRoutesIDOR(t *testing.T) {
	e := newEnv(t, Config{})
	// A route mounted later, the way the turns and evidence packages will.
	e.srv.CaseRouter().Post("/api/v1/cases/{case_id}/later/{file_id}", func(w http.ResponseWriter, r *http.Request) {
		row, _ := CaseFrom(r.Context())
		writeJSON(w, http.StatusOK, map[string]string{"case_id": row.CaseID})
	})
	alice, bob := e.register("alice"), e.register("mallory")
	rec := e.call("POST", "/api/v1/cases", alice.AccessToken, `{"title":"Alice's outage","description":"private"}`)
	wantStatus(t, rec, http.StatusCreated)
	id := decode[map[string]any](t, rec)["case_id"].(string)
	// Alice reaches the later route through the ownership check.
	wantStatus(t, e.call("POST", "/api/v1/cases/"+id+"/later/f1", alice.AccessToken, ""), http.StatusOK)

	type route struct{ method, pattern string }
	var routes []route
	err := chi.Walk(e.srv.Router(), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.Contains(pattern, "{case_id}") {
			routes = append(routes, route{method, pattern})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	if len(routes) == 0 {
		t.Fatalf("the walk found no case routes")
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].pattern+routes[i].method < routes[j].pattern+routes[j].method })
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r.method+" "+r.pattern] = true
	}
	for _, must := range []string{
		"GET /api/v1/cases/{case_id}", "PUT /api/v1/cases/{case_id}", "DELETE /api/v1/cases/{case_id}",
		"GET /api/v1/cases/{case_id}/ui", "GET /api/v1/cases/{case_id}/messages",
		"POST /api/v1/cases/{case_id}/title", "POST /api/v1/cases/{case_id}/close",
		"POST /api/v1/cases/{case_id}/status", "POST /api/v1/cases/{case_id}/later/{file_id}",
		"POST /api/v1/cases/{case_id}/turns", "GET /api/v1/cases/{case_id}/timeline",
		"GET /api/v1/cases/{case_id}/uploaded-files", "POST /api/v1/cases/{case_id}/uploaded-files",
		"GET /api/v1/cases/{case_id}/uploaded-files/{file_id}", "DELETE /api/v1/cases/{case_id}/uploaded-files/{file_id}",
	} {
		if !seen[must] {
			t.Fatalf("walk missed %s (found %v)", must, routes)
		}
	}

	// A body that would be valid for any of them, so only ownership can stop it.
	const body = `{"title":"pwned","to_state":"closed","closure_reason":"inquiry_only","reason":"x","max_words":8}`
	var notFound string
	for _, r := range routes {
		path := strings.Replace(r.pattern, "{case_id}", id, 1)
		path = routeParam.ReplaceAllString(path, "x")
		t.Run(r.method+" "+r.pattern, func(t *testing.T) {
			rec := e.call(r.method, path, bob.AccessToken, body, "Idempotency-Key", "idor_key_123")
			wantError(t, rec, http.StatusNotFound, CodeCaseNotFound)
			if notFound == "" {
				notFound = rec.Body.String()
			} else if rec.Body.String() != notFound {
				t.Fatalf("404 bodies differ: %q vs %q", rec.Body, notFound)
			}
			// Indistinguishable from a case that does not exist at all.
			ghost := strings.Replace(path, id, "case_00000000000000000000000000", 1)
			if g := e.call(r.method, ghost, alice.AccessToken, body); g.Code != http.StatusNotFound || g.Body.String() != rec.Body.String() {
				t.Fatalf("missing case answered %d %q, foreign case %q", g.Code, g.Body, rec.Body)
			}
		})
	}

	// Alice's case is untouched.
	row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, alice.AccessToken, ""))
	if row["title"] != "Alice's outage" || row["state"] != "inquiry" {
		t.Fatalf("Alice's case changed: %v", row)
	}
	if ui := getUI(t, e, alice.AccessToken, id); !reflect.DeepEqual(ui["status_history"], []any{}) {
		t.Fatalf("Alice's history changed: %v", ui["status_history"])
	}
	// Bob sees none of it in his list.
	if list := decode[map[string]any](t, e.call("GET", "/api/v1/cases", bob.AccessToken, "")); !reflect.DeepEqual(list["cases"], []any{}) {
		t.Fatalf("Bob lists %v", list["cases"])
	}
}

func TestCaseRoutesNeedAuth(t *testing.T) {
	e := newEnv(t, Config{})
	for _, path := range []string{"/api/v1/cases", "/api/v1/cases/case_x", "/api/v1/cases/case_x/ui"} {
		wantError(t, e.call("GET", path, "", ""), http.StatusUnauthorized, CodeNotAuthenticated)
	}
	tok := e.register("judy").AccessToken
	for _, id := range []string{"nope", strings.Repeat("a", 200), "case_..%2F..%2Fauth"} {
		rec := e.call("GET", fmt.Sprintf("/api/v1/cases/%s/ui", id), tok, "")
		wantError(t, rec, http.StatusNotFound, CodeCaseNotFound)
	}
	var raw json.RawMessage = e.call("GET", "/api/v1/cases", tok, "").Body.Bytes()
	if !strings.Contains(string(raw), `"cases":[]`) {
		t.Fatalf("empty list is not []: %s", raw)
	}
}
