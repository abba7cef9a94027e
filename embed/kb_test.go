package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestUploadEveryFormat(t *testing.T) {
	e := newEnv(t, Config{})
	cases := []struct{ file, body, query string }{
		{"runbook.md", "# Nginx 502 runbook\n\n## Diagnosis\n\nCheck upstream zebracorn health.\n", "zebracorn"},
		{"notes.txt", "The frobnicator daemon leaks sockets after a reload.\n", "frobnicator"},
		{"page.html", "<html><head><title>x</title><script>var hidden='scriptword';</script></head><body><h1>Guide</h1><p>Restart the quuxserver &amp; check logs.</p></body></html>", "quuxserver"},
		{"config.json", `{"service":{"name":"wombatd","ports":[8080,9090]}}`, "wombatd"},
		{"deploy.yaml", "service:\n  name: platypusd\n  replicas: 3\n", "platypusd"},
		{"hosts.csv", "host,role\ndb1,narwhalprimary\n", "narwhalprimary"},
		{"app.log", "2024-01-01T00:00:00Z ERROR axolotl worker crashed: connection refused\n", "axolotl"},
		{"guide.pdf", string(makePDF(t, true, "", []string{"Capybarad restart procedure"}, []string{"Check the capybarad socket"})), "capybarad"},
	}
	ids := map[string]string{}
	for _, c := range cases {
		d := e.upload(Upload{Filename: c.file, DocumentType: "runbook"}, c.body)
		if d.Status != StatusProcessing {
			t.Fatalf("%s: status %q at upload", c.file, d.Status)
		}
		ids[c.file] = d.DocumentID
	}
	e.wait()
	for _, c := range cases {
		d, text, err := e.kb.Get(context.Background(), alice, ids[c.file])
		if err != nil || d.Status != StatusReady || d.Chunks < 1 {
			t.Fatalf("%s: %+v %v", c.file, d, err)
		}
		if !strings.Contains(text, c.query) {
			t.Errorf("%s: extracted text lacks %q:\n%s", c.file, c.query, text)
		}
		if res := e.search(alice, c.query); !hasDoc(res, ids[c.file]) {
			t.Errorf("%s: search %q did not find it: %+v", c.file, c.query, res)
		}
	}
	if res := e.search(alice, "scriptword"); len(res) != 0 {
		t.Errorf("script content was indexed: %+v", res)
	}
	_, text, _ := e.kb.Get(context.Background(), alice, ids["config.json"])
	if !strings.Contains(text, "service.ports[1]: 9090") {
		t.Errorf("JSON not flattened: %q", text)
	}
	_, text, _ = e.kb.Get(context.Background(), alice, ids["hosts.csv"])
	if !strings.Contains(text, "host: db1; role: narwhalprimary") {
		t.Errorf("CSV not flattened: %q", text)
	}
	res := e.search(alice, "upstream zebracorn")
	if len(res) == 0 || strings.Join(res[0].HeadingPath, "/") != "Nginx 502 runbook/Diagnosis" {
		t.Errorf("heading path: %+v", res)
	}
}

func TestUnsupportedAndBadUploads(t *testing.T) {
	e := newEnv(t, Config{MaxDocBytes: 1 << 10})
	bad := []struct {
		name, body string
		want       error
	}{
		{"img.png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ErrUnsupported},
		{"blob.bin", "\x00\x01\x02\x03binary", ErrUnsupported},
		{"empty.md", "", ErrEmpty},
		{"big.txt", strings.Repeat("word ", 400), ErrTooLarge},
	}
	for _, c := range bad {
		_, _, err := e.kb.Upload(context.Background(), Upload{Owner: "alice", Filename: c.name, Body: strings.NewReader(c.body)})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if n := e.countKeys("d/"); n != 0 {
		t.Errorf("%d documents stored for rejected uploads", n)
	}
	// A PDF is read after the upload returns: a broken one is accepted,
	// then fails with the reason.
	d := e.upload(Upload{Filename: "broken.pdf"}, "%PDF-1.7\n%âãÏÓ\n1 0 obj\n")
	e.wait()
	got, _, err := e.kb.Get(context.Background(), alice, d.DocumentID)
	if err != nil || got.Status != StatusFailed || !strings.Contains(got.Error, "not a readable PDF") {
		t.Errorf("broken PDF: %+v %v", got, err)
	}
}

func TestScopeIsolation(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.upload(Upload{Owner: "alice", Scope: ScopeUser, Filename: "a.md"}, "# Private\n\nalice secret kestrelhost password rotation\n")
	g := e.upload(Upload{Owner: "root", Admin: true, Scope: ScopeGlobal, Filename: "g.md"}, "# Global\n\nshared kestrelhost runbook\n")
	c := e.upload(Upload{Owner: "carol", Scope: ScopeCase, CaseID: "case1", Filename: "c.md"}, "# Case\n\nkestrelhost evidence from the case\n")
	e.wait()
	bobCase := Viewer{UserID: "bob", CaseIDs: func(id string) bool { return id == "case1" }}

	res := e.search(bob, "kestrelhost")
	if hasDoc(res, a.DocumentID) || !hasDoc(res, g.DocumentID) || hasDoc(res, c.DocumentID) {
		t.Errorf("bob sees %+v", res)
	}
	if res := e.search(alice, "kestrelhost"); !hasDoc(res, a.DocumentID) || !hasDoc(res, g.DocumentID) {
		t.Errorf("alice sees %+v", res)
	}
	if res := e.search(admin, "alice secret"); hasDoc(res, a.DocumentID) {
		t.Error("admin sees alice's user document")
	}
	r, _ := e.kb.Search(context.Background(), bobCase, SearchQuery{Query: "kestrelhost", CaseID: "case1"})
	if !hasDoc(r, c.DocumentID) || hasDoc(r, a.DocumentID) {
		t.Errorf("bob with case: %+v", r)
	}
	r, _ = e.kb.Search(context.Background(), bob, SearchQuery{Query: "kestrelhost", CaseID: "case1"})
	if hasDoc(r, c.DocumentID) {
		t.Error("bob without case access sees the case document")
	}
	// Visibility is applied before top-k: one slot is enough for bob's global hit
	// even though alice's document ranks higher.
	r, _ = e.kb.Search(context.Background(), bob, SearchQuery{Query: "alice secret kestrelhost", Limit: 1})
	if len(r) != 1 || r[0].DocumentID != g.DocumentID {
		t.Errorf("limit 1 for bob: %+v", r)
	}

	if _, _, err := e.kb.Get(context.Background(), bob, a.DocumentID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob Get alice's doc: %v", err)
	}
	docs, total, _ := e.kb.List(context.Background(), bob, ListQuery{})
	if total != 1 || docs[0].DocumentID != g.DocumentID {
		t.Errorf("bob List: %d %+v", total, docs)
	}
	if err := e.kb.Delete(context.Background(), bob, a.DocumentID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob deletes alice's doc: %v", err)
	}
	if err := e.kb.Delete(context.Background(), bob, g.DocumentID); !errors.Is(err, ErrForbidden) {
		t.Errorf("bob deletes a global doc: %v", err)
	}
	_, _, err := e.kb.Upload(context.Background(), Upload{Owner: "bob", Scope: ScopeGlobal, Filename: "x.md", Body: strings.NewReader("# x\n\ny\n")})
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("bob creates a global doc: %v", err)
	}
	if err := e.kb.Delete(context.Background(), admin, g.DocumentID); err != nil {
		t.Errorf("admin deletes a global doc: %v", err)
	}
}

func TestDeleteAndDedupe(t *testing.T) {
	e := newEnv(t, Config{})
	body := "# Disk full\n\n## Symptoms\n\nNo space left on device while writing gravlax files.\n"
	d1 := e.upload(Upload{Filename: "disk.md"}, body)
	d2, dup, err := e.kb.Upload(context.Background(), Upload{Owner: "alice", Filename: "disk-copy.md", Body: strings.NewReader(body)})
	if err != nil || !dup || d2.DocumentID != d1.DocumentID {
		t.Fatalf("dedupe: %v %v %s %s", err, dup, d2.DocumentID, d1.DocumentID)
	}
	// Same content, other owner: a separate document.
	d3 := e.upload(Upload{Owner: "bob", Filename: "disk.md"}, body)
	if d3.DocumentID == d1.DocumentID {
		t.Fatal("bob's upload deduplicated against alice's")
	}
	e.wait()
	if !hasDoc(e.search(alice, "gravlax"), d1.DocumentID) {
		t.Fatal("not found before delete")
	}
	if err := e.kb.Delete(context.Background(), alice, d1.DocumentID); err != nil {
		t.Fatal(err)
	}
	if res := e.search(alice, "gravlax"); len(res) != 0 {
		t.Errorf("found right after delete: %+v", res)
	}
	if n := e.countKeys("c/" + d1.DocumentID + "/"); n != 0 {
		t.Errorf("%d chunk keys left", n)
	}
	e.reopen()
	if res := e.search(alice, "gravlax"); len(res) != 0 {
		t.Errorf("found after reopen: %+v", res)
	}
	if !hasDoc(e.search(bob, "gravlax"), d3.DocumentID) {
		t.Error("bob's copy lost when alice deleted hers")
	}
	// After the delete the same content can be uploaded again.
	if _, dup, err := e.kb.Upload(context.Background(), Upload{Owner: "alice", Filename: "disk.md", Body: strings.NewReader(body)}); err != nil || dup {
		t.Errorf("re-upload after delete: dup=%v err=%v", dup, err)
	}
	e.wait()
}

// TestDeleteCaseRemovesItsDocuments: deleting a case's documents takes
// every document scoped to that case, with its chunks and blob, and
// nothing else (another case's, a user's, the same text in another case).
func TestDeleteCaseRemovesItsDocuments(t *testing.T) {
	e := newEnv(t, Config{})
	note := "# Case note\n\nThe wombatcache on node-3 needs a restart.\n"
	a1 := e.upload(Upload{Owner: "carol", Scope: ScopeCase, CaseID: "case_a", Filename: "note.md"}, note)
	a2 := e.upload(Upload{Owner: "carol", Scope: ScopeCase, CaseID: "case_a", Filename: "more.md"}, "# More\n\nwombatcache heap dump taken at 10:02.\n")
	b := e.upload(Upload{Owner: "carol", Scope: ScopeCase, CaseID: "case_b", Filename: "note.md"}, note)
	u := e.upload(Upload{Owner: "carol", Filename: "mine.md"}, "# Mine\n\nwombatcache tuning notes.\n")
	e.wait()
	carol := Viewer{UserID: "carol", CaseIDs: func(id string) bool { return id == "case_a" || id == "case_b" }}
	inCase := func(caseID string) []Result {
		t.Helper()
		res, err := e.kb.Search(context.Background(), carol, SearchQuery{Query: "wombatcache", CaseID: caseID, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := inCase("case_a"); !hasDoc(res, a1.DocumentID) || !hasDoc(res, a2.DocumentID) {
		t.Fatalf("before: %+v", res)
	}

	n, err := e.kb.DeleteCase(context.Background(), "case_a")
	if err != nil || n != 2 {
		t.Fatalf("DeleteCase = %d, %v; want 2", n, err)
	}
	for _, id := range []string{a1.DocumentID, a2.DocumentID} {
		if _, _, err := e.kb.Get(context.Background(), carol, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s still there: %v", id, err)
		}
		if k := e.countKeys("c/" + id + "/"); k != 0 {
			t.Errorf("%s: %d chunk keys left", id, k)
		}
	}
	if res := inCase("case_a"); hasDoc(res, a1.DocumentID) || hasDoc(res, a2.DocumentID) || !hasDoc(res, u.DocumentID) {
		t.Errorf("after: %+v", res)
	}
	if res := inCase("case_b"); !hasDoc(res, b.DocumentID) {
		t.Errorf("case_b's copy of the same note went too: %+v", res)
	}
	e.reopen()
	if res := inCase("case_a"); hasDoc(res, a1.DocumentID) || hasDoc(res, a2.DocumentID) {
		t.Errorf("back after reopen: %+v", res)
	}
	if n, err := e.kb.DeleteCase(context.Background(), "case_a"); err != nil || n != 0 {
		t.Errorf("second DeleteCase = %d, %v", n, err)
	}
}

// TestRestartMidIngestion closes the KB while jobs are pending, and also
// plants a job directly, then checks that a reopen finishes everything with
// exact chunk counts and no duplicates.
func TestRestartMidIngestion(t *testing.T) {
	e := newEnv(t, Config{ChunkChars: 200, Overlap: 40})
	const n = 200
	ids := make([]string, n)
	for i := range n {
		body := fmt.Sprintf("# Doc %d\n\n## Part one\n\nentry%d %s\n\n## Part two\n\nmore words about incident %d\n", i, i, strings.Repeat("lorem ipsum dolor ", 15), i)
		ids[i] = e.upload(Upload{Filename: fmt.Sprintf("d%03d.md", i)}, body).DocumentID
	}
	_ = e.kb.Close() // mid-ingestion: most jobs are still pending
	pending := 0
	if err := e.kb.ks.Scan([]byte("j/"), false, func(_, _ []byte) error { pending++; return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d jobs pending at close", pending, n)
	e.reopen()
	e.wait()
	// Simulate a crash before every commit: each document back to
	// processing with its job planted directly, and stray chunk keys left
	// over (more than the real count), which the re-run must replace.
	for _, id := range ids {
		d := e.kb.docs[id].doc
		d.Status, d.Chunks = StatusProcessing, 0
		dj, _ := json.Marshal(d)
		jj, _ := json.Marshal(job{DocumentID: id, Digest: d.SHA256, Format: FormatMarkdown})
		b := e.kb.ks.NewBatch()
		_ = b.Set(docKey(id), dj)
		_ = b.Set(jobKey(id), jj)
		_ = b.Set(chunkKey(id, 99), []byte(`{"document_id":"`+id+`","n":99,"body":"stale"}`))
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
	}
	e.reopen()
	if e.kb.Pending() == 0 && e.countKeys("j/") == n {
		t.Fatal("planted jobs not resumed")
	}
	e.wait()

	want := 0
	for i, id := range ids {
		d, _, err := e.kb.Get(context.Background(), alice, id)
		if err != nil || d.Status != StatusReady {
			t.Fatalf("doc %d: %+v %v", i, d, err)
		}
		if got := e.countKeys("c/" + id + "/"); got != d.Chunks || got < 2 {
			t.Fatalf("doc %d: %d chunk keys, document says %d", i, got, d.Chunks)
		}
		want += d.Chunks
	}
	if got := e.countKeys("c/"); got != want {
		t.Errorf("%d chunk keys, want %d", got, want)
	}
	if e.kb.lex.Len() != want {
		t.Errorf("index holds %d chunks, want %d", e.kb.lex.Len(), want)
	}
	if e.countKeys("j/") != 0 {
		t.Error("jobs left")
	}
	if res := e.search(alice, "stale"); len(res) != 0 {
		t.Errorf("stale chunk searchable: %+v", res)
	}
	res := e.search(alice, "entry17")
	if len(res) != 1 || res[0].DocumentID != ids[17] {
		t.Errorf("entry17: %+v", res)
	}
	seen := map[string]bool{}
	for _, r := range e.search(alice, "lorem incident") {
		if seen[r.ChunkID] {
			t.Errorf("duplicate chunk %s", r.ChunkID)
		}
		seen[r.ChunkID] = true
	}
}

func TestIndexRebuiltAtOpen(t *testing.T) {
	e := newEnv(t, Config{})
	d := e.upload(Upload{Filename: "tls.md"}, "# TLS expiry\n\n## Symptoms\n\nx509: certificate has expired or is not yet valid\n")
	e.wait()
	e.reopen()
	if e.kb.lex.Len() != 1 {
		t.Fatalf("index has %d chunks after reopen", e.kb.lex.Len())
	}
	if !hasDoc(e.search(alice, "certificate expired"), d.DocumentID) {
		t.Error("not found after reopen")
	}
}

func TestFailedDocumentAndSearchLimits(t *testing.T) {
	e := newEnv(t, Config{})
	// Only whitespace and markup: extraction yields nothing → failed.
	d := e.upload(Upload{Filename: "blank.html"}, "<html><body>   <div></div> </body></html>")
	e.wait()
	got, _, err := e.kb.Get(context.Background(), alice, d.DocumentID)
	if err != nil || got.Status != StatusFailed || got.Error == "" {
		t.Errorf("blank html: %+v %v", got, err)
	}
	if e.countKeys("j/") != 0 {
		t.Error("failed job left behind")
	}
	long := "# Long\n\n" + strings.Repeat("## Part\n\nsalmonella outbreak words here\n\n", 10)
	l := e.upload(Upload{Filename: "long.md"}, long)
	e.wait()
	n := 0
	for _, r := range e.search(alice, "salmonella") {
		if r.DocumentID == l.DocumentID {
			n++
		}
	}
	if n != maxPerDocument {
		t.Errorf("%d chunks of one document, want %d", n, maxPerDocument)
	}
	if _, err := e.kb.Search(context.Background(), alice, SearchQuery{}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty query: %v", err)
	}
}
