package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
)

// formPart is one part of a multipart turn body; disposition, when set,
// replaces the generated Content-Disposition (hostile file names).
type formPart struct {
	name, filename, content, disposition string
}

func multipartBody(t *testing.T, parts ...formPart) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		switch {
		case p.disposition != "":
			h.Set("Content-Disposition", p.disposition)
			h.Set("Content-Type", "text/plain")
		case p.filename != "":
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.filename))
			h.Set("Content-Type", "text/plain")
		default:
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.name))
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pw.Write([]byte(p.content))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), w.FormDataContentType()
}

func (e *env) postTurn(token, caseID, body, ctype string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.call("POST", "/api/v1/cases/"+caseID+"/turns", token, body, append([]string{"Content-Type", ctype}, hdr...)...)
}

var turnResponseKeys = []string{"agent_response", "attachments_processed", "case_state", "milestones_completed",
	"progress_made", "suggested_actions", "turn_number"}

func TestRESTTurnSyncAndIdempotent(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	e.llm.Enqueue(llmtest.Reply{Content: "The log shows ENOSPC at 03:12; /var is full."})

	const logLine = "2024-05-01T03:12:00Z postgres: could not write: No space left on device"
	body, ctype := multipartBody(t,
		formPart{name: "query", content: "  why did postgres stop?  "},
		formPart{name: "input_type", content: "file"},
		formPart{name: "files", content: logLine + "\n```\nnot a fence break\n",
			disposition: `form-data; name="files"; filename*=UTF-8''..%2F..%5Cetc%5Cpg%1B%5B31m%E2%80%AEgol.log`},
		formPart{name: "observed_at", content: "ignored"},
	)
	rec := e.postTurn(tok, id, body, ctype, "Idempotency-Key", "opt_msg_1716400000000_1")
	wantStatus(t, rec, http.StatusOK)
	first := rec.Body.String()
	resp := decode[map[string]any](t, rec)
	keys := make([]string, 0, len(resp))
	for k := range resp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != strings.Join(turnResponseKeys, ",") {
		t.Fatalf("TurnResponse keys %v, want exactly %v", keys, turnResponseKeys)
	}
	if resp["agent_response"] != "The log shows ENOSPC at 03:12; /var is full." || resp["turn_number"] != float64(1) ||
		resp["case_state"] != "inquiry" || resp["progress_made"] != false {
		t.Fatalf("TurnResponse: %s", first)
	}
	for _, k := range []string{"suggested_actions", "milestones_completed"} {
		if _, ok := resp[k].([]any); !ok {
			t.Fatalf("%s must be an array: %s", k, first)
		}
	}
	atts, _ := resp["attachments_processed"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments_processed: %s", first)
	}
	att := atts[0].(map[string]any)
	wantExactKeys(t, "attachment", att, "filename", "file_size", "source_type", "evidence_id", "file_id",
		"processing_status", "upload_source", "uploaded_at")
	stored, err := e.evid.List(context.Background(), id)
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored files %+v, %v", stored, err)
	}
	sf := stored[0]
	if att["filename"] != "pg[31mgol.log" || sf.Filename != "pg[31mgol.log" || att["source_type"] != string(sf.Kind) ||
		att["file_id"] != sf.FileID || att["evidence_id"] != sf.FileID || att["processing_status"] != "completed" ||
		att["upload_source"] != "file_upload" || sf.UploadedAtTurn != 1 ||
		att["file_size"] != float64(len(logLine)+len("\n```\nnot a fence break\n")) {
		t.Fatalf("attachment %v, stored %+v", att, sf)
	}
	// The file reached the model as a digest in the context, not pasted
	// into the user's message.
	reqs := e.llm.Requests()
	asked := reqs[len(reqs)-1].LastUser()
	if !strings.Contains(asked, "why did postgres stop?") || strings.Contains(asked, logLine) {
		t.Fatalf("the model was asked %q", asked)
	}
	if !requestContains(reqs[len(reqs)-1], "pg[31mgol.log") {
		t.Fatalf("the file is not in the model's context")
	}

	// The same key again: the same body, no second LLM call.
	n := e.llm.RequestCount()
	rec = e.postTurn(tok, id, body, ctype, "Idempotency-Key", "opt_msg_1716400000000_1")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != first {
		t.Fatalf("replay differs:\n%s\n%s", first, rec.Body)
	}
	if e.llm.RequestCount() != n {
		t.Fatalf("the replay called the LLM again")
	}
	if row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, tok, "")); row["current_turn"] != float64(1) {
		t.Fatalf("the replay made a turn: %v", row)
	}

	// A query-only turn (URL-encoded this time) still has the array.
	form := url.Values{"query": {"and now?"}}.Encode()
	rec = e.postTurn(tok, id, form, "application/x-www-form-urlencoded")
	wantStatus(t, rec, http.StatusOK)
	if !strings.Contains(rec.Body.String(), `"attachments_processed":[]`) || decode[map[string]any](t, rec)["turn_number"] != float64(2) {
		t.Fatalf("query-only turn: %s", rec.Body)
	}

	// A paste from a page capture.
	body, ctype = multipartBody(t,
		formPart{name: "pasted_content", content: "HTTP 502 from upstream"},
		formPart{name: "input_type", content: "page_capture"},
		formPart{name: "source_url", content: "https://grafana.example/d/abc"})
	rec = e.postTurn(tok, id, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	var pasted struct {
		Atts []attachmentResult `json:"attachments_processed"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &pasted)
	if len(pasted.Atts) != 1 || pasted.Atts[0].SourceType != "page_capture" || !strings.HasPrefix(pasted.Atts[0].Filename, "page-capture-") ||
		pasted.Atts[0].UploadSource != "page_capture" || pasted.Atts[0].FileSize != int64(len("HTTP 502 from upstream")) {
		t.Fatalf("page capture: %s", rec.Body)
	}
	f, err := e.evid.Get(context.Background(), id, pasted.Atts[0].FileID)
	if err != nil || f.SourceURL != "https://grafana.example/d/abc" || f.UploadedAtTurn != 3 {
		t.Fatalf("stored page capture %+v, %v", f, err)
	}
	// A plain paste.
	body, ctype = multipartBody(t, formPart{name: "query", content: "and this"}, formPart{name: "pasted_content", content: "ERROR boom"})
	rec = e.postTurn(tok, id, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	_ = json.Unmarshal(rec.Body.Bytes(), &pasted)
	if len(pasted.Atts) != 1 || pasted.Atts[0].SourceType != "text_paste" || !strings.HasPrefix(pasted.Atts[0].Filename, "pasted-content-") ||
		pasted.Atts[0].UploadSource != "paste" {
		t.Fatalf("paste: %s", rec.Body)
	}

	// A turn the model fails: 502 with the reason, and the job says so.
	e.llm.Enqueue(llmtest.Reply{Status: http.StatusBadRequest})
	body, ctype = multipartBody(t, formPart{name: "query", content: "fail please"})
	rec = e.postTurn(tok, id, body, ctype)
	eb := wantError(t, rec, http.StatusBadGateway, CodeTurnFailed)
	if !strings.Contains(eb.Detail, "language model") {
		t.Fatalf("failure detail %q", eb.Detail)
	}
	rec = e.call("GET", "/api/v1/jobs/turn."+id+".5", tok, "")
	if got := decode[jobResponse](t, rec); got.Status != "failed" || got.Error == nil || got.Error.Message != eb.Detail {
		t.Fatalf("failed job: %s", rec.Body)
	}
}

func TestRESTTurnAsyncJob(t *testing.T) {
	e := newLiveEnv(t, Config{TurnSyncWait: 100 * time.Millisecond})
	alice := e.register("alice")
	bob := e.register("bob")
	tok := alice.AccessToken
	id := e.newCase(tok)
	e.llm.Enqueue(llmtest.Reply{Content: "Slow but sure.", TTFT: 700 * time.Millisecond})

	body, ctype := multipartBody(t, formPart{name: "query", content: "take your time"},
		formPart{name: "files", filename: "slow.log", content: "2024-05-01T03:12:00Z ERROR slow disk\n"})
	rec := e.postTurn(tok, id, body, ctype, "Idempotency-Key", "opt_msg_async_0001")
	wantStatus(t, rec, http.StatusAccepted)
	job := "turn." + id + ".1"
	if loc := rec.Header().Get("Location"); loc != "http://example.com/api/v1/jobs/"+job {
		t.Fatalf("Location %q", loc)
	}
	if got := decode[jobResponse](t, rec); got.Status != "pending" || got.JobID != job {
		t.Fatalf("202 body %s", rec.Body)
	}
	// Others see no job; nonsense ids are 404 too.
	for _, path := range []string{"/api/v1/jobs/" + job} {
		wantError(t, e.call("GET", path, bob.AccessToken, ""), http.StatusNotFound, CodeNotFound)
	}
	for _, bad := range []string{"turn." + id + ".0", "turn." + id + ".9", "turn." + id, "job-1", "turn..1", "turn." + id + ".01"} {
		wantError(t, e.call("GET", "/api/v1/jobs/"+url.PathEscape(bad), tok, ""), http.StatusNotFound, CodeNotFound)
	}
	var done jobResponse
	wstest.WaitFor(t, 15*time.Second, "the job to complete", func() bool {
		rec := e.call("GET", "/api/v1/jobs/"+job, tok, "")
		wantStatus(t, rec, http.StatusOK)
		done = decode[jobResponse](t, rec)
		if done.Status != "pending" && done.Status != "completed" {
			t.Fatalf("poll: %s", rec.Body)
		}
		return done.Status == "completed"
	})
	if done.Result == nil || done.Result.AgentResponse != "Slow but sure." || done.Result.TurnNumber != 1 ||
		done.Result.CaseState != "inquiry" {
		t.Fatalf("completed job: %+v", done)
	}
	// The job result describes the turn's file, rebuilt from the case's log.
	files, err := e.evid.List(context.Background(), id)
	if err != nil || len(files) != 1 {
		t.Fatalf("files %+v %v", files, err)
	}
	if want := []attachmentResult{attachmentOf(files[0])}; !reflect.DeepEqual(done.Result.AttachmentsProcessed, want) {
		t.Fatalf("job attachments %+v, want %+v", done.Result.AttachmentsProcessed, want)
	}
	// Replaying the key once the turn is done answers 200 at once, with
	// the same attachments and no second copy of the file.
	rec = e.postTurn(tok, id, body, ctype, "Idempotency-Key", "opt_msg_async_0001")
	wantStatus(t, rec, http.StatusOK)
	if e.llm.RequestCount() != 1 {
		t.Fatalf("%d LLM requests", e.llm.RequestCount())
	}
	if got := decode[turnResponse](t, rec); !reflect.DeepEqual(got.AttachmentsProcessed, done.Result.AttachmentsProcessed) {
		t.Fatalf("replay attachments %+v, job's %+v", got.AttachmentsProcessed, done.Result.AttachmentsProcessed)
	}
	if files, _ := e.evid.List(context.Background(), id); len(files) != 1 {
		t.Fatalf("the replay left %d files", len(files))
	}
}

func TestRESTTurnStatusTransition(t *testing.T) {
	e := newLiveEnv(t, Config{})
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)
	body, ctype := multipartBody(t,
		formPart{name: "query", content: "Close this case. I don't need further investigation."},
		formPart{name: "intent_type", content: "status_transition"},
		formPart{name: "intent_data", content: `{"type":"status_transition","from_state":"inquiry","to_state":"closed","user_confirmed":true}`})
	rec := e.postTurn(tok, id, body, ctype, "Idempotency-Key", "opt_msg_close_0001")
	wantStatus(t, rec, http.StatusOK)
	if got := decode[turnResponse](t, rec); got.CaseState != "closed" {
		t.Fatalf("case_state %q, want closed: %s", got.CaseState, rec.Body)
	}
	row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, tok, ""))
	if row["state"] != "closed" || row["closure_reason"] != "inquiry_only" || row["closed_at"] == nil {
		t.Fatalf("case row after closing: %v", row)
	}
	// Terminal: a second transition is a conflict.
	body, ctype = multipartBody(t,
		formPart{name: "query", content: "reopen"},
		formPart{name: "intent_type", content: "status_transition"},
		formPart{name: "intent_data", content: `{"type":"status_transition","from_state":"closed","to_state":"investigating","user_confirmed":true}`})
	wantError(t, e.postTurn(tok, id, body, ctype), http.StatusConflict, CodeInvalidTransition)
}

func TestRESTTurnRefusals(t *testing.T) {
	e := newLiveEnv(t, Config{MaxUploadBytes: 512 << 10})
	alice := e.register("alice")
	bob := e.register("bob")
	tok := alice.AccessToken
	id := e.newCase(tok)
	q := formPart{name: "query", content: "hi"}
	for _, tc := range []struct {
		name   string
		parts  []formPart
		hdr    []string
		status int
		code   string
		detail string
	}{
		{"empty", nil, nil, 422, CodeValidation, "a turn needs a query, pasted_content or a file"},
		{"intent_data not JSON", []formPart{q, {name: "intent_type", content: "confirmation"}, {name: "intent_data", content: "{yes"}}, nil, 422, CodeValidation, "intent_data must be a JSON object"},
		{"empty file", []formPart{q, {name: "files", filename: "empty.log"}}, nil, 422, CodeValidation, "The file is empty (0 bytes); nothing was stored"},
		{"good file, then an empty one", []formPart{q, {name: "files", filename: "a.log", content: "ERROR x\n"}, {name: "files", filename: "empty.log"}}, nil, 422, CodeValidation, ""},
		{"bad idempotency key", []formPart{q}, []string{"Idempotency-Key", "short"}, 422, CodeValidation, ""},
		{"too large", []formPart{q, {name: "files", filename: "a.log", content: "first\n"}, {name: "files", filename: "big.log", content: strings.Repeat("x", 600<<10)}}, nil, 413, CodeTooLarge, "The upload is larger than the limit of 512 KiB; nothing was stored"},
		{"too much text", []formPart{{name: "pasted_content", content: strings.Repeat("y", 150<<10)}, {name: "query", content: strings.Repeat("z", 200_001)}}, nil, 422, CodeValidation, "query is too long (at most 200000 bytes)"},
		{"the case refuses the turn after its file was stored", []formPart{{name: "files", filename: "a.log", content: "x\n"}, {name: "intent_type", content: "status_transition"}, {name: "intent_data", content: `{"to_state":"nonsense","user_confirmed":true}`}}, nil, 409, CodeInvalidTransition, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ctype := multipartBody(t, tc.parts...)
			eb := wantError(t, e.postTurn(tok, id, body, ctype, tc.hdr...), tc.status, tc.code)
			if tc.detail != "" && eb.Detail != tc.detail {
				t.Fatalf("detail %q, want %q", eb.Detail, tc.detail)
			}
		})
	}
	wantError(t, e.postTurn(tok, id, `{"query":"hi"}`, "application/json"), http.StatusUnsupportedMediaType, CodeUnsupportedMedia)
	wantError(t, e.postTurn(tok, id, "--x\r\nbroken", "multipart/form-data; boundary=x"), http.StatusBadRequest, CodeMalformedForm)
	body, ctype := multipartBody(t, q)
	wantError(t, e.postTurn(bob.AccessToken, id, body, ctype), http.StatusNotFound, CodeCaseNotFound)
	if n := e.llm.RequestCount(); n != 0 {
		t.Fatalf("refused turns reached the LLM %d times", n)
	}
	// Refused turns left neither a turn nor a file behind.
	if row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, tok, "")); row["current_turn"] != float64(0) {
		t.Fatalf("a refused turn was stored: %v", row)
	}
	if files, err := e.evid.List(context.Background(), id); err != nil || len(files) != 0 {
		t.Fatalf("refused turns left files: %+v %v", files, err)
	}
	e.wantNoBlobs()
}

func TestAbsoluteURL(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		tls  bool
		xfp  string
		want string
	}{
		{Config{}, false, "", "http://api.local:8090/p"},
		{Config{}, true, "", "https://api.local:8090/p"},
		{Config{}, false, "https", "http://api.local:8090/p"}, // no trusted proxy: the header is ignored
		{Config{TrustedProxies: 1}, false, "https", "https://api.local:8090/p"},
		{Config{PublicURL: "https://fm.example.com/base/"}, false, "", "https://fm.example.com/base/p"},
	} {
		tc.cfg.EnsureDefaults()
		s := &Server{cfg: tc.cfg}
		r := httptest.NewRequest("GET", "http://api.local:8090/x", nil)
		if tc.tls {
			r = httptest.NewRequest("GET", "https://api.local:8090/x", nil)
		}
		if tc.xfp != "" {
			r.Header.Set("X-Forwarded-Proto", tc.xfp)
		}
		if got := s.absoluteURL(r, "/p"); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc, got, tc.want)
		}
	}
	if err := (Config{PublicURL: "fm.example.com"}).Validate(); err == nil {
		t.Fatal("a PublicURL without scheme must be refused")
	}
}

func TestTurnAndWSConfig(t *testing.T) {
	cfg := Config{CORSOrigins: []string{"Chrome-Extension://ABC/"}, PublicURL: " https://fm.example.com/ "}
	cfg.EnsureDefaults()
	if cfg.TurnSyncWait != DefaultTurnSyncWait || cfg.WSMaxConnsPerUser != DefaultWSMaxConnsPerUser ||
		cfg.MaxUploadBytes != DefaultMaxUploadBytes || cfg.PublicURL != "https://fm.example.com" ||
		len(cfg.WSOrigins) != 1 || cfg.WSOrigins[0] != "chrome-extension://abc" {
		t.Fatalf("defaults: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	own := Config{CORSOrigins: []string{"https://a.example"}, WSOrigins: []string{"https://b.example"}}
	own.EnsureDefaults()
	if len(own.WSOrigins) != 1 || own.WSOrigins[0] != "https://b.example" {
		t.Fatalf("WSOrigins set explicitly: %v", own.WSOrigins)
	}
	for name, bad := range map[string]Config{
		"TurnSyncWait":      {TurnSyncWait: -time.Second},
		"WSMaxConnsPerUser": {WSMaxConnsPerUser: -1},
		"MaxUploadBytes":    {MaxUploadBytes: -1},
		"WSOrigins":         {WSOrigins: []string{"*"}},
		"PublicURL":         {PublicURL: "ftp://fm.example.com"},
	} {
		bad.EnsureDefaults()
		err := bad.Validate()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
