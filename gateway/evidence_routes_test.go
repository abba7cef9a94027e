package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/evidence"
)

// Field names of the contract (§6.1, §6.2), exactly.
var (
	fileKeys = []string{"file_id", "filename", "size_bytes", "size_display", "uploaded_at_turn", "evidence_count",
		"analysis_status", "source_type", "summary", "uploaded_at"}
	fileDetailKeys = []string{"file_id", "filename", "uploaded_at_turn", "summary", "size_bytes", "source_type",
		"analysis_status", "derived_evidence"}
	derivedKeys = []string{"evidence_id", "summary", "category", "related_hypothesis_ids"}
)

const errorLog = `2024-05-01T03:12:00Z INFO postgres: checkpoint starting
2024-05-01T03:12:01Z ERROR postgres: could not write to file "pg_wal/000000010000000000000042": No space left on device
2024-05-01T03:12:02Z ERROR postgres: could not write to file "pg_wal/000000010000000000000042": No space left on device
2024-05-01T03:12:05Z WARN postgres: terminating connection because of crash of another server process
2024-05-01T03:12:09Z INFO postgres: database system is shut down
`

func onDisk(o *envOption) { o.onDisk = true }

// wantExactKeys fails unless obj has exactly keys.
func wantExactKeys(t testing.TB, what string, obj map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(obj))
	for k := range obj {
		got = append(got, k)
	}
	want := append([]string{}, keys...)
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s has keys %v, want exactly %v", what, got, want)
	}
}

// requestContains reports whether any message of req (content or tool
// call arguments) contains sub.
func requestContains(req *llmtest.ChatRequest, sub string) bool {
	for _, m := range req.Messages {
		if strings.Contains(m.Content, sub) {
			return true
		}
		for _, c := range m.ToolCalls {
			if strings.Contains(c.Function.Arguments, sub) {
				return true
			}
		}
	}
	return false
}

// rfc5987 percent-encodes s as an RFC 5987 ext-value (any byte but the
// attr-chars), so any name, hostile or not, reaches the server intact.
func rfc5987(s string) string {
	const attr = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(attr, c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// upload posts one file to the dedicated endpoint; fields are name/value
// pairs sent before the file part.
func (e *env) upload(token, caseID, filename, content string, fields ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var parts []formPart
	for i := 0; i+1 < len(fields); i += 2 {
		parts = append(parts, formPart{name: fields[i], content: fields[i+1]})
	}
	parts = append(parts, formPart{name: "file", content: content,
		disposition: `form-data; name="file"; filename*=UTF-8''` + rfc5987(filename)})
	body, ctype := multipartBody(e.t.(*testing.T), parts...)
	return e.call("POST", "/api/v1/cases/"+caseID+"/uploaded-files", token, body, "Content-Type", ctype)
}

// uploaded uploads and returns the 201 body.
func (e *env) uploaded(token, caseID, filename, content string, fields ...string) map[string]any {
	e.t.Helper()
	rec := e.upload(token, caseID, filename, content, fields...)
	wantStatus(e.t, rec, http.StatusCreated)
	return decode[map[string]any](e.t, rec)
}

// blobFiles lists the content files in the blob store, and the files left
// in its temp directory.
func (e *env) blobFiles() (blobs, tmp []string) {
	e.t.Helper()
	root := filepath.Join(e.dataDir, "blobs")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if strings.HasPrefix(rel, "tmp"+string(filepath.Separator)) {
			tmp = append(tmp, rel)
		} else {
			blobs = append(blobs, rel)
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("walk blobs: %v", err)
	}
	return blobs, tmp
}

func (e *env) wantNoBlobs() {
	e.t.Helper()
	if blobs, tmp := e.blobFiles(); len(blobs)+len(tmp) != 0 {
		e.t.Fatalf("blob store not empty: blobs %v, tmp %v", blobs, tmp)
	}
}

func (e *env) files(caseID string) []evidence.File {
	e.t.Helper()
	files, err := e.evid.List(context.Background(), caseID)
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	return files
}

func TestUploadedFilesRoutes(t *testing.T) {
	e := newEnv(t, Config{}, onDisk)
	tok := e.register("alice").AccessToken
	id, other := e.newCase(tok), e.newCase(tok)

	// Upload with its labels: 201, Location, the list entry's fields.
	rec := e.upload(tok, id, "db.log", errorLog, "upload_source", "page_capture", "source_url", "https://grafana.example/d/1")
	wantStatus(t, rec, http.StatusCreated)
	up := decode[map[string]any](t, rec)
	wantExactKeys(t, "uploaded file", up, fileKeys...)
	fid := up["file_id"].(string)
	if rec.Header().Get("Location") != "/api/v1/cases/"+id+"/uploaded-files/"+fid {
		t.Fatalf("Location %q", rec.Header().Get("Location"))
	}
	if up["filename"] != "db.log" || up["size_bytes"] != float64(len(errorLog)) || up["size_display"] != sizeDisplay(int64(len(errorLog))) ||
		up["uploaded_at_turn"] != float64(0) || up["evidence_count"] != float64(1) || up["analysis_status"] != "completed" ||
		up["source_type"] != "logs" || up["summary"] == "" {
		t.Fatalf("uploaded: %v", up)
	}
	if f, err := e.evid.Get(context.Background(), id, fid); err != nil || f.UploadSource != "page_capture" || f.SourceURL != "https://grafana.example/d/1" {
		t.Fatalf("stored %+v %v", f, err)
	}

	// The same content again, in the same case: a duplicate. In another
	// case: not.
	dup := e.uploaded(tok, id, "copy.log", errorLog)
	wantExactKeys(t, "duplicate", dup, append(fileKeys, "duplicate_of")...)
	if dup["duplicate_of"] != fid || dup["evidence_count"] != float64(1) {
		t.Fatalf("duplicate: %v", dup)
	}
	if elsewhere := e.uploaded(tok, other, "db.log", errorLog); elsewhere["duplicate_of"] != nil {
		t.Fatalf("a duplicate across cases: %v", elsewhere)
	}
	cfg := e.uploaded(tok, id, "app.yaml", "server:\n  port: 8080\n  workers: 4\n")
	bin := e.uploaded(tok, id, "core.log", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00\xff\xfe\x00\x01")
	if cfg["source_type"] != "configuration" || cfg["evidence_count"] != float64(1) {
		t.Fatalf("config: %v", cfg)
	}
	if bin["source_type"] != "binary" || bin["evidence_count"] != float64(0) || bin["analysis_status"] != "skipped" {
		t.Fatalf("binary named .log: %v", bin)
	}

	// List: every file, oldest first, contract names.
	rec = e.call("GET", "/api/v1/cases/"+id+"/uploaded-files", tok, "")
	wantStatus(t, rec, http.StatusOK)
	list := decode[map[string]any](t, rec)
	wantExactKeys(t, "list", list, "files", "total_count", "limit", "offset")
	files := list["files"].([]any)
	if len(files) != 4 || list["total_count"] != float64(4) || list["limit"] != float64(100) || list["offset"] != float64(0) {
		t.Fatalf("list: %v", list)
	}
	if !reflect.DeepEqual(files[0], up) || !reflect.DeepEqual(files[1], dup) {
		t.Fatalf("list entries differ from the upload answers:\n%v\n%v", files[0], up)
	}
	page := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files?limit=1&offset=3", tok, ""))
	if p := page["files"].([]any); len(p) != 1 || p[0].(map[string]any)["file_id"] != bin["file_id"] || page["total_count"] != float64(4) {
		t.Fatalf("page: %v", page)
	}
	if past := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files?offset=9", tok, "")); !reflect.DeepEqual(past["files"], []any{}) {
		t.Fatalf("past the end: %v", past)
	}
	wantError(t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files?limit=0", tok, ""), http.StatusUnprocessableEntity, CodeValidation)

	// Detail: the digest is the derived evidence; a log with errors is a symptom.
	rec = e.call("GET", "/api/v1/cases/"+id+"/uploaded-files/"+fid, tok, "")
	wantStatus(t, rec, http.StatusOK)
	detail := decode[map[string]any](t, rec)
	wantExactKeys(t, "detail", detail, fileDetailKeys...)
	derived := detail["derived_evidence"].([]any)
	if len(derived) != 1 || detail["filename"] != "db.log" || detail["summary"] != up["summary"] {
		t.Fatalf("detail: %v", detail)
	}
	d := derived[0].(map[string]any)
	wantExactKeys(t, "derived evidence", d, derivedKeys...)
	if d["evidence_id"] != fid || d["category"] != "symptom" || d["summary"] != up["summary"] ||
		!reflect.DeepEqual(d["related_hypothesis_ids"], []any{}) {
		t.Fatalf("derived: %v", d)
	}
	cd := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files/"+cfg["file_id"].(string), tok, ""))
	if dd := cd["derived_evidence"].([]any); len(dd) != 1 || dd[0].(map[string]any)["category"] != "context" {
		t.Fatalf("config detail: %v", cd)
	}
	bd := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files/"+bin["file_id"].(string), tok, ""))
	if !reflect.DeepEqual(bd["derived_evidence"], []any{}) {
		t.Fatalf("binary detail: %v", bd)
	}
	for _, bad := range []string{"ev_00000000000000000000000000", "nope", url.PathEscape("../../x"), elsewhereID(t, e, tok, other)} {
		wantError(t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files/"+bad, tok, ""), http.StatusNotFound, CodeFileNotFound)
	}

	// /ui counts files uploaded outside turns.
	if ui := getUI(t, e, tok, id); ui["uploaded_files_count"] != float64(4) {
		t.Fatalf("/ui count: %v", ui["uploaded_files_count"])
	}

	// Timeline: the case's history and what the log says.
	rec = e.call("GET", "/api/v1/cases/"+id+"/timeline", tok, "")
	wantStatus(t, rec, http.StatusOK)
	tl := decode[map[string]any](t, rec)
	wantExactKeys(t, "timeline", tl, "case_id", "timeline")
	entries := tl["timeline"].([]any)
	var sources, texts []string
	for _, en := range entries {
		m := en.(map[string]any)
		wantExactKeys(t, "timeline entry", m, "at", "source", "text")
		sources = append(sources, m["source"].(string))
		texts = append(texts, m["text"].(string))
	}
	all := strings.Join(texts, "\n")
	if tl["case_id"] != id || !strings.Contains(strings.Join(sources, ","), "evidence") ||
		!strings.Contains(all, "case opened") || !strings.Contains(all, "db.log: ") || !strings.Contains(all, "No space left on device") {
		t.Fatalf("timeline: %v", tl)
	}

	// Delete: 204, then 404 everywhere.
	rec = e.call("DELETE", "/api/v1/cases/"+id+"/uploaded-files/"+fid, tok, "")
	wantStatus(t, rec, http.StatusNoContent)
	wantError(t, e.call("GET", "/api/v1/cases/"+id+"/uploaded-files/"+fid, tok, ""), http.StatusNotFound, CodeFileNotFound)
	wantError(t, e.call("DELETE", "/api/v1/cases/"+id+"/uploaded-files/"+fid, tok, ""), http.StatusNotFound, CodeFileNotFound)

	// Refusals.
	wantError(t, e.call("POST", "/api/v1/cases/"+id+"/uploaded-files", tok, `{"file":"x"}`), http.StatusUnsupportedMediaType, CodeUnsupportedMedia)
	wantError(t, e.upload(tok, id, "empty.log", ""), http.StatusUnprocessableEntity, CodeValidation)
	body, ctype := multipartBody(t, formPart{name: "file", filename: "a.log", content: "late\n"}, formPart{name: "source_url", content: "https://x"})
	wantError(t, e.call("POST", "/api/v1/cases/"+id+"/uploaded-files", tok, body, "Content-Type", ctype), http.StatusUnprocessableEntity, CodeValidation)
	if n := len(e.files(id)); n != 3 {
		t.Fatalf("refused uploads changed the case: %d files", n)
	}

	// Deleting the case deletes its evidence; the other case keeps its
	// copy of the shared content.
	wantStatus(t, e.call("DELETE", "/api/v1/cases/"+id, tok, ""), http.StatusNoContent)
	if n := len(e.files(id)); n != 0 {
		t.Fatalf("%d files outlived their case", n)
	}
	if blobs, tmp := e.blobFiles(); len(blobs) != 1 || len(tmp) != 0 || !strings.HasSuffix(blobs[0], e.files(other)[0].SHA256) {
		t.Fatalf("blobs after deleting the case: %v (tmp %v)", blobs, tmp)
	}
}

// elsewhereID is the id of a file in another case of the same user.
func elsewhereID(t *testing.T, e *env, tok, caseID string) string {
	t.Helper()
	files := e.files(caseID)
	if len(files) == 0 {
		t.Fatalf("case %s has no files", caseID)
	}
	return files[0].FileID
}

// hostileNames are client file names meant to escape the data directory or
// fool a reader; each must be stored as a harmless display name.
var hostileNames = []string{
	"../../../../etc/passwd",
	"/etc/shadow",
	`C:\Windows\System32\drivers\evil.log`,
	`..\..\boot.ini`,
	"nul\x00byte.log",
	strings.Repeat("a", 10_000) + ".log",
	"invoice\u202egol.exe",
	"zero\u200bwidth\ufeff.txt",
	"\u2066isolate\u2069.md",
	"..",
	"line\nbreak\r.log",
}

// safeName checks what a stored name may look like.
func safeName(t *testing.T, raw, got string) {
	t.Helper()
	if got == "" || len(got) > 255 || !utf8.ValidString(got) || strings.ContainsAny(got, `/\`) || got == "." || got == ".." {
		t.Fatalf("name %q stored as %q", raw, got)
	}
	for _, r := range got {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("name %q stored as %q, with %U", raw, got, r)
		}
	}
	if want := evidence.SanitizeFilename(raw); got != want {
		t.Fatalf("name %q stored as %q, want %q", raw, got, want)
	}
}

func TestHostileFileNames(t *testing.T) {
	e := newLiveEnv(t, Config{}, func(o *liveOption) { o.env = append(o.env, onDisk) })
	tok := e.register("alice").AccessToken
	viaEndpoint, viaTurn := e.newCase(tok), e.newCase(tok)

	for i, raw := range hostileNames {
		got := e.uploaded(tok, viaEndpoint, raw, fmt.Sprintf("hostile %d\n", i))
		safeName(t, raw, got["filename"].(string))
	}
	parts := []formPart{{name: "query", content: "look at these"}}
	for i, raw := range hostileNames[:maxTurnFiles] {
		parts = append(parts, formPart{name: "files", content: fmt.Sprintf("turn hostile %d\n", i),
			disposition: `form-data; name="files"; filename*=UTF-8''` + rfc5987(raw)})
	}
	e.llm.Enqueue(llmtest.Reply{Content: "Noted."})
	body, ctype := multipartBody(t, parts...)
	rec := e.postTurn(tok, viaTurn, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	atts := decode[turnResponse](t, rec).AttachmentsProcessed
	if len(atts) != maxTurnFiles {
		t.Fatalf("%d attachments", len(atts))
	}
	for i, a := range atts {
		safeName(t, hostileNames[i], a.Filename)
	}
	// The same content in a later turn of the same case is a duplicate of
	// the first; in another case it is not.
	for _, tc := range []struct {
		caseID, dupOf string
		dupTurn       int
	}{{viaTurn, atts[0].FileID, 1}, {viaEndpoint, "", 0}} {
		e.llm.Enqueue(llmtest.Reply{Content: "Seen it."})
		body, ctype := multipartBody(t, formPart{name: "files", filename: "again.log", content: "turn hostile 0\n"})
		rec := e.postTurn(tok, tc.caseID, body, ctype)
		wantStatus(t, rec, http.StatusOK)
		raw := decode[map[string]any](t, rec)["attachments_processed"].([]any)[0].(map[string]any)
		keys := []string{"filename", "file_size", "source_type", "evidence_id", "file_id", "processing_status", "upload_source", "uploaded_at"}
		if tc.dupOf != "" {
			keys = append(keys, "duplicate_of", "duplicate_turn")
		}
		wantExactKeys(t, "attachment", raw, keys...)
		if tc.dupOf != "" && (raw["duplicate_of"] != tc.dupOf || raw["duplicate_turn"] != float64(tc.dupTurn)) {
			t.Fatalf("re-upload: %v, want a duplicate of %s from turn %d", raw, tc.dupOf, tc.dupTurn)
		}
	}
	for _, caseID := range []string{viaEndpoint, viaTurn} {
		for _, f := range e.files(caseID) {
			if f.Filename == "" || strings.ContainsAny(f.Filename, "/\\\x00") {
				t.Fatalf("stored name %q", f.Filename)
			}
		}
	}

	// Nothing was written outside the data directory, and inside it only
	// Pebble's files and content-addressed blobs exist.
	siblings, err := os.ReadDir(filepath.Dir(e.dataDir))
	if err != nil || len(siblings) != 1 || siblings[0].Name() != filepath.Base(e.dataDir) {
		t.Fatalf("beside the data dir: %v %v", siblings, err)
	}
	blobPath := regexp.MustCompile(`^blobs/[a-z]+/([0-9a-f]{2})/([0-9a-f]{64})$`)
	err = filepath.WalkDir(e.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, e.dataDir+string(filepath.Separator)))
		if d.IsDir() {
			return nil
		}
		switch m := blobPath.FindStringSubmatch(rel); {
		case m != nil && strings.HasPrefix(m[2], m[1]):
		case strings.HasPrefix(rel, "db/") && !strings.Contains(rel[3:], "/"):
		default:
			t.Errorf("unexpected file in the data dir: %q", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// repeatReader yields its line forever: a body that is never held whole.
type repeatReader struct {
	line string
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}

// pipeTurn streams a multipart turn whose second file has size bytes,
// generated on the fly, into the handler, and returns the answer and how
// many bytes the test process allocated meanwhile.
func (e *env) pipeTurn(token, path, field string, size int64) (*httptest.ResponseRecorder, uint64) {
	e.t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := func() error {
			if field == "files" { // a small file first: it must be taken back
				fw, err := mw.CreateFormFile("files", "first.log")
				if err != nil {
					return err
				}
				if _, err := io.WriteString(fw, "2024-05-01T03:12:00Z ERROR first\n"); err != nil {
					return err
				}
			}
			fw, err := mw.CreateFormFile(field, "huge.log")
			if err != nil {
				return err
			}
			if _, err := io.Copy(fw, io.LimitReader(&repeatReader{line: "2024-05-01T03:12:00Z ERROR disk full on /var\n"}, size)); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req := httptest.NewRequest("POST", path, pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e.h.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	_ = pr.CloseWithError(io.ErrClosedPipe) // the handler stopped reading: release the writer
	wg.Wait()
	return rec, after.TotalAlloc - before.TotalAlloc
}

func TestUploadOverTheCap(t *testing.T) {
	const limit = 8 << 20
	// The request's cap (8 MiB) below the store's (50 MiB), and the
	// store's (4 MiB) below the request's (10 MiB).
	byRequest := newEnv(t, Config{MaxUploadBytes: limit}, onDisk)
	byStore := newEnv(t, Config{}, onDisk, func(o *envOption) { o.evidenceCfg.MaxUpload = 4 << 20 })
	const requestCap = "The upload is larger than the limit of 8 MiB; nothing was stored"
	const storeCap = "The file is larger than the 4 MB limit"
	for _, tc := range []struct {
		name   string
		e      *env
		turn   bool
		size   int64
		detail string
	}{
		{"turn, request cap", byRequest, true, limit + 1, requestCap},
		{"endpoint, request cap", byRequest, false, limit + 1, requestCap},
		{"turn, store cap", byStore, true, 4<<20 + 1, storeCap},
		{"endpoint, store cap", byStore, false, 4<<20 + 1, storeCap},
	} {
		// No subtests: the env's helpers fail the test that made the env.
		e := tc.e
		tok := e.register("u" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", ""), ",", "")).AccessToken
		id := e.newCase(tok)
		path, field := "/api/v1/cases/"+id+"/uploaded-files", "file"
		if tc.turn {
			path, field = "/api/v1/cases/"+id+"/turns", "files"
		}
		rec, allocated := e.pipeTurn(tok, path, field, tc.size)
		eb := wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)
		if eb.Detail != tc.detail {
			t.Fatalf("%s: detail %q, want %q", tc.name, eb.Detail, tc.detail)
		}
		if allocated > uint64(tc.size)/2 {
			t.Fatalf("%s: a %d-byte upload allocated %d bytes: it was held in memory", tc.name, tc.size, allocated)
		}
		if files := e.files(id); len(files) != 0 {
			t.Fatalf("%s: files stored: %+v", tc.name, files)
		}
		e.wantNoBlobs()
		if row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, tok, "")); row["current_turn"] != float64(0) {
			t.Fatalf("%s: a refused upload made a turn: %v", tc.name, row)
		}
		// A declared length over the request's cap is refused before reading.
		req := httptest.NewRequest("POST", path, bytes.NewReader(nil))
		req.ContentLength = e.srv.cfg.MaxUploadBytes + 1
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec = httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		wantError(t, rec, http.StatusRequestEntityTooLarge, CodeTooLarge)
	}
}

// TestEvidenceOfAnotherUser: besides the IDOR walk over every case route,
// the file routes with a real file id of someone else's case.
func TestEvidenceOfAnotherUser(t *testing.T) {
	e := newEnv(t, Config{})
	alice, bob := e.register("alice").AccessToken, e.register("bob").AccessToken
	aCase, bCase := e.newCase(alice), e.newCase(bob)
	fid := e.uploaded(alice, aCase, "secret.log", errorLog)["file_id"].(string)

	base := "/api/v1/cases/" + aCase
	for _, tc := range []struct{ method, path string }{
		{"GET", base + "/uploaded-files"},
		{"GET", base + "/uploaded-files/" + fid},
		{"DELETE", base + "/uploaded-files/" + fid},
		{"GET", base + "/timeline"},
	} {
		wantError(t, e.call(tc.method, tc.path, bob, ""), http.StatusNotFound, CodeCaseNotFound)
	}
	wantError(t, e.upload(bob, aCase, "planted.log", "planted\n"), http.StatusNotFound, CodeCaseNotFound)
	// Through his own case, Alice's file id is just unknown.
	wantError(t, e.call("GET", "/api/v1/cases/"+bCase+"/uploaded-files/"+fid, bob, ""), http.StatusNotFound, CodeFileNotFound)
	wantError(t, e.call("DELETE", "/api/v1/cases/"+bCase+"/uploaded-files/"+fid, bob, ""), http.StatusNotFound, CodeFileNotFound)

	files := e.files(aCase)
	if len(files) != 1 || files[0].FileID != fid || files[0].Filename != "secret.log" {
		t.Fatalf("Alice's files changed: %+v", files)
	}
	if n := len(e.files(bCase)); n != 0 {
		t.Fatalf("Bob's case has %d files", n)
	}
}
