package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/gateway/ws"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
	"github.com/faultmaven/faultmaven/internal/loghub"
	"github.com/faultmaven/faultmaven/persistence"
)

func loghubFile(t *testing.T, rel string) string { return loghub.File(t, rel) }

// fileLines reads a small text file's lines.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestTurnEvidenceReachesTheAgent uploads a real HDFS log with a turn: the
// model gets its digest, not the file; then, asked to, it searches and
// reads the file with tool calls and gets the matching lines back.
func TestTurnEvidenceReachesTheAgent(t *testing.T) {
	path := loghubFile(t, filepath.Join("HDFS", "HDFS_2k.log"))
	lines := fileLines(t, path)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An INFO line whose block id appears once: it is in no digest, and no
	// tool call below asks for it.
	const secretBlock = "blk_38865049064139660"
	if !strings.Contains(lines[0], secretBlock) || strings.Count(string(raw), secretBlock) != 1 {
		t.Fatalf("unexpected sample: line 1 is %q", lines[0])
	}
	const warnBlock = "blk_-2918118818249673980" // line 78, a WARN
	if !strings.Contains(lines[77], warnBlock) {
		t.Fatalf("unexpected sample: line 78 is %q", lines[77])
	}

	e := newLiveEnv(t, Config{}, func(o *liveOption) { o.env = append(o.env, onDisk) })
	e.llm.Forbid(secretBlock) // a request carrying it is answered 400 and recorded
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)

	e.llm.Enqueue(llmtest.Reply{Content: "The DataXceiver warnings stand out."})
	body, ctype := multipartBody(t, formPart{name: "query", content: "why are block transfers failing?"},
		formPart{name: "files", filename: "HDFS_2k.log", content: string(raw)})
	rec := e.postTurn(tok, id, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	resp := decode[turnResponse](t, rec)
	if len(resp.AttachmentsProcessed) != 1 {
		t.Fatalf("attachments: %s", rec.Body)
	}
	att := resp.AttachmentsProcessed[0]
	if att.SourceType != "logs" || att.ProcessingStatus != "completed" || att.FileSize != int64(len(raw)) || att.Filename != "HDFS_2k.log" {
		t.Fatalf("attachment %+v", att)
	}

	// The digest went to the model: its summary line, as the store made it.
	digests, err := e.evid.Digests(context.Background(), id)
	if err != nil || len(digests) != 1 || digests[0].Digest == "" {
		t.Fatalf("digests %+v %v", digests, err)
	}
	var summary string
	for _, l := range strings.Split(digests[0].Digest, "\n") {
		if strings.HasPrefix(l, "**Summary:**") {
			summary = l
		}
	}
	if summary == "" || !strings.Contains(summary, "2,000 lines") {
		t.Fatalf("digest without its summary line:\n%s", digests[0].Digest)
	}
	reqs := e.llm.Requests()
	if len(reqs) != 1 || !requestContains(reqs[0], summary) || !requestContains(reqs[0], "Got exception while serving") {
		t.Fatalf("the model did not get the digest (%d requests)", len(reqs))
	}

	// Second turn: the model searches and reads; the results come back in
	// the tool messages of its next request.
	e.llm.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCallReply{
			{ID: "call_search", Name: "search_evidence", Arguments: fmt.Sprintf(`{"query":%q}`, warnBlock)},
			{ID: "call_read", Name: "read_evidence", Arguments: fmt.Sprintf(`{"evidence_id":%q,"from_line":100,"to_line":102}`, att.FileID)},
		}},
		llmtest.Reply{Content: "Block " + warnBlock + " failed to transfer."},
	)
	body, ctype = multipartBody(t, formPart{name: "query", content: "look closer at " + warnBlock})
	rec = e.postTurn(tok, id, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	if got := decode[turnResponse](t, rec); !strings.Contains(got.AgentResponse, "failed to transfer") {
		t.Fatalf("second turn: %s", rec.Body)
	}
	reqs = e.llm.Requests()
	last := reqs[len(reqs)-1]
	tool := map[string]string{}
	for _, m := range last.Messages {
		if m.Role == "tool" {
			tool[m.ToolCallID] = m.Content
		}
	}
	if !strings.Contains(tool["call_search"], warnBlock) || !strings.Contains(tool["call_search"], "Got exception while serving") {
		t.Fatalf("search result %q", tool["call_search"])
	}
	for _, want := range lines[99:102] {
		if !strings.Contains(tool["call_read"], blockID(want)) {
			t.Fatalf("read result %q lacks line %q", tool["call_read"], want)
		}
	}

	// The raw file never left: not the unique line, not its block id.
	if v := e.llm.Violations(); len(v) != 0 {
		t.Fatalf("forbidden content sent: %v", v)
	}
	for i, r := range reqs {
		if requestContains(r, secretBlock) || requestContains(r, lines[0]) {
			t.Fatalf("request %d carries a raw line of the file", i)
		}
	}
}

// blockID is the HDFS block id in a line (the part of a line no
// formatting of a tool result would change).
func blockID(line string) string {
	i := strings.Index(line, "blk_")
	if i < 0 {
		return line
	}
	j := i + 4
	for j < len(line) && (line[j] == '-' || line[j] >= '0' && line[j] <= '9') {
		j++
	}
	return line[i:j]
}

// TestWSTurnAttachments: a WebSocket turn names files uploaded with the
// dedicated endpoint; they are recorded with the message and reach the
// model as digests. Unknown ids and other cases' files are not_found.
func TestWSTurnAttachments(t *testing.T) {
	e := newLiveEnv(t, Config{})
	alice, bob := e.register("alice").AccessToken, e.register("bob").AccessToken
	id := e.newCase(alice)
	bobCase := e.newCase(bob)
	fid := e.uploaded(alice, id, "db.log", errorLog)["file_id"].(string)
	bobFile := e.uploaded(bob, bobCase, "bob.log", "2024-05-01T03:12:00Z ERROR bob's own\n")["file_id"].(string)

	c := e.connect(alice)
	c.Subscribe(id, 0)

	// Unknown ids, another case's file, and a case that is not hers.
	for _, tc := range []struct {
		caseID string
		atts   []string
	}{
		{id, []string{"ev_00000000000000000000000000"}},
		{id, []string{fid, bobFile}},
		{bobCase, []string{bobFile}},
	} {
		f := wstest.TurnFrame(tc.caseID, "m-bad", "look")
		f["attachments"] = tc.atts
		c.Send(f)
		c.WantError(ws.CodeNotFound, "m-bad")
	}
	if row := decode[map[string]any](t, e.call("GET", "/api/v1/cases/"+id, alice, "")); row["current_turn"] != float64(0) {
		t.Fatalf("a refused turn was stored: %v", row)
	}

	e.llm.Enqueue(llmtest.Reply{Content: "The disk is full."})
	f := wstest.TurnFrame(id, "m-1", "")
	f["attachments"] = []string{fid, fid}
	c.Send(f)
	frames := c.Until(isTurnDone)
	var ev []evidenceEvent
	for _, fr := range frames {
		if fr.Type == "event" && fr.Kind == "evidence" {
			var d evidenceEvent
			if err := json.Unmarshal(fr.Data, &d); err != nil {
				t.Fatal(err)
			}
			ev = append(ev, d)
		}
	}
	if len(ev) != 1 || ev[0].EvidenceID != fid || ev[0].Filename != "db.log" || ev[0].TurnNumber != 1 || ev[0].SourceType != "logs" {
		t.Fatalf("evidence events %+v", ev)
	}
	if m := assistantMessage(t, frames); m.Content != "The disk is full." {
		t.Fatalf("answer %q", m.Content)
	}
	reqs := e.llm.Requests()
	if !requestContains(reqs[len(reqs)-1], "db.log") || !requestContains(reqs[len(reqs)-1], "No space left on device") {
		t.Fatalf("the attached file's digest did not reach the model")
	}
}

func TestEvidenceSource(t *testing.T) {
	db, err := persistence.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ks, err := db.Keyspace(persistence.SpaceEvid)
	if err != nil {
		t.Fatal(err)
	}
	store, err := evidence.New(ks, ks.Blobs(), evidence.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src := NewEvidenceSource(store)
	ctx := context.Background()
	put := func(name, body string) evidence.File {
		t.Helper()
		f, err := store.Put(ctx, evidence.Upload{CaseID: "case_a", Filename: name, Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	var ids []string
	for i := range maxTurnDigests + 2 {
		ids = append(ids, put(fmt.Sprintf("app-%d.log", i), fmt.Sprintf("2024-05-01T03:12:%02dZ ERROR failure number %d\n", i, i)).FileID)
	}
	bin := put("core.bin", "\x7fELF\x02\x01\x01\x00"+strings.Repeat("\x00\x01\x02\xff", 20))

	// Newest first, at most maxTurnDigests; a binary is described by its summary.
	d, err := src.Digests(ctx, "case_a")
	if err != nil || len(d) != maxTurnDigests {
		t.Fatalf("%d digests, %v", len(d), err)
	}
	if d[0].EvidenceID != bin.FileID || !strings.Contains(d[0].Digest, "core.bin: binary") || d[1].EvidenceID != ids[len(ids)-1] {
		t.Fatalf("digests %+v", d[:2])
	}
	total := 0
	for _, x := range d {
		total += len(x.Digest)
	}
	if total > maxTurnDigestChars {
		t.Fatalf("%d digest characters", total)
	}

	// A binary file reads as hex rows of 16 bytes.
	r, err := src.Read(ctx, "case_a", bin.FileID, 2, 3)
	if err != nil || r.FromLine != 2 || r.ToLine != 3 || r.TotalLines != (bin.SizeBytes+15)/16 ||
		!strings.HasPrefix(r.Text, "00000010  ") || strings.Count(r.Text, "\n") != 2 {
		t.Fatalf("hex read %+v %v", r, err)
	}
	r, err = src.Read(ctx, "case_a", ids[3], 1, 1)
	if err != nil || !strings.Contains(r.Text, "failure number 3") || r.TotalLines != 1 {
		t.Fatalf("text read %+v %v", r, err)
	}
	hits, err := src.Search(ctx, "case_a", " FAILURE number 7 ", 5)
	if err != nil || len(hits) != 1 || hits[0].EvidenceID != ids[7] || hits[0].Line != 1 {
		t.Fatalf("search %+v %v", hits, err)
	}
	list, err := src.List(ctx, "case_a")
	if err != nil || len(list) != len(ids)+1 || list[0].EvidenceID != ids[0] || list[len(list)-1].Kind != "binary" {
		t.Fatalf("list %+v %v", list, err)
	}
	tl, err := src.Timeline(ctx, "case_a")
	if err != nil || len(tl) == 0 || !strings.HasPrefix(tl[0].Text, "app-0.log: ") {
		t.Fatalf("timeline %+v %v", tl, err)
	}
	if _, err := src.Read(ctx, "case_b", ids[0], 1, 1); err == nil {
		t.Fatalf("a file read through another case")
	}
}

// TestSecretsInAttachedEvidenceNeverReachTheLLM attaches a configuration
// file holding secrets the way engineers share them (Maven settings.xml,
// a Spring properties file, a cookie in a captured request) and has the
// model read it back with read_evidence (a configuration file's digest
// holds no lines): no request may carry a secret, and the tool result must
// carry the file's lines with pseudonyms in their place.
func TestSecretsInAttachedEvidenceNeverReachTheLLM(t *testing.T) {
	secrets := []string{"n3xusDepl0y!", "Spr1ngP4ss", "8f14e45fceea167a5a36dedd4bea2543"}
	file := "<settings>\n  <servers>\n    <server>\n      <id>nexus</id>\n      <username>deploy</username>\n" +
		"      <password>" + secrets[0] + "</password>\n    </server>\n  </servers>\n</settings>\n" +
		"<!-- application.properties -->\n<!-- spring.datasource.password=" + secrets[1] + " -->\n" +
		"<!-- GET /api/orders HTTP/1.1 Cookie: JSESSIONID=" + secrets[2] + " -->\n"
	e := newLiveEnv(t, Config{})
	e.llm.Forbid(secrets...)
	tok := e.register("alice").AccessToken
	id := e.newCase(tok)

	e.llm.Enqueue(llmtest.Reply{Content: "The nexus server entry looks right."})
	body, ctype := multipartBody(t, formPart{name: "query", content: "deploys to nexus get 401"},
		formPart{name: "files", filename: "settings.xml", content: file})
	rec := e.postTurn(tok, id, body, ctype)
	wantStatus(t, rec, http.StatusOK)
	resp := decode[turnResponse](t, rec)
	if len(resp.AttachmentsProcessed) != 1 || resp.AttachmentsProcessed[0].ProcessingStatus != "completed" {
		t.Fatalf("attachments: %s", rec.Body)
	}
	fileID := resp.AttachmentsProcessed[0].FileID

	e.llm.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCallReply{
			{ID: "call_read", Name: "read_evidence", Arguments: fmt.Sprintf(`{"evidence_id":%q,"from_line":1,"to_line":12}`, fileID)},
		}},
		llmtest.Reply{Content: "Checked the file."},
	)
	body, ctype = multipartBody(t, formPart{name: "query", content: "read the whole file"})
	wantStatus(t, e.postTurn(tok, id, body, ctype), http.StatusOK)

	if v := e.llm.Violations(); len(v) != 0 {
		t.Fatalf("a secret from the attached file reached the LLM: %v", v)
	}
	reqs := e.llm.Requests()
	if len(reqs) < 3 {
		t.Fatalf("want the digest turn and the read turn's two requests, got %d", len(reqs))
	}
	var toolResult string
	for _, m := range reqs[len(reqs)-1].Messages {
		if m.Role == "tool" && m.ToolCallID == "call_read" {
			toolResult = m.Content
		}
	}
	if !strings.Contains(toolResult, "<username>deploy</username>") || strings.Count(toolResult, "<secret-") < 3 {
		t.Fatalf("the read_evidence result must carry the lines with three pseudonyms: %q", toolResult)
	}
}
