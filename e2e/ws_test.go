package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
)

type wsFrame = wstest.Frame

// dialWS connects and authenticates with an auth frame (the way a browser,
// which cannot set headers on a WebSocket, does).
func dialWS(t *testing.T, base, token string) *wstest.Client {
	t.Helper()
	c, resp, err := wstest.Dial(t, "ws"+strings.TrimPrefix(base, "http")+"/api/v1/ws", "", nil, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c.Send(map[string]any{"type": "auth", "token": token})
	if f := c.Next(); f.Type != "ready" {
		t.Fatalf("want ready, got %s", f.Raw)
	}
	return c
}

func messageOf(t *testing.T, f wsFrame) (role, content string, turn int) {
	t.Helper()
	var d struct {
		Role    string `json:"role"`
		Content string `json:"content"`
		Turn    int    `json:"turn_number"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Role, d.Content, d.Turn
}

func isAnswer(turn int) func(wsFrame) bool {
	return func(f wsFrame) bool { return f.Type == "turn_done" && f.Turn == turn }
}

func newCase(t *testing.T, base, token string) string {
	t.Helper()
	var row struct {
		CaseID string `json:"case_id"`
	}
	if code, err := call(base, "POST", "/api/v1/cases", token, map[string]any{"title": nil}, &row); err != nil || code != 201 {
		t.Fatalf("create case: %d %v", code, err)
	}
	return row.CaseID
}

// TestWebSocketTurnAgainstTheBinary drives bin/faultmaven over a real
// WebSocket with the fake LLM behind the real openai-go client.
func TestWebSocketTurnAgainstTheBinary(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	answer := "Check the upstream pool: the deploy at 14:00 halved max_conns, which matches the 502s."
	fake.SetDefault(llmtest.Reply{Content: answer, ChunkChars: 4, TTFT: 50 * time.Millisecond, TokensPerSec: 200})
	srv := startServer(t, t.TempDir(), "--llm-base-url", fake.URL(), "--llm-model", "fake")
	tk := register(t, srv.base, "ws-user")
	caseID := newCase(t, srv.base, tk.AccessToken)

	c := dialWS(t, srv.base, tk.AccessToken)
	sub := c.Subscribe(caseID, 0)
	head := *sub[len(sub)-1].HeadSeq
	c.Send(map[string]any{"type": "turn", "case_id": caseID, "client_msg_id": "cm-1", "text": "API returns 502 since 14:00"})
	frames := c.Until(isAnswer(1))

	ackAt, firstDelta := -1, -1
	var ack wsFrame
	var deltas strings.Builder
	var final string
	var seqs []uint64
	for i, f := range frames {
		switch f.Type {
		case "ack":
			ackAt, ack = i, f
		case "delta":
			if firstDelta < 0 {
				firstDelta = i
			}
			deltas.WriteString(f.Text)
		case "event":
			seqs = append(seqs, f.Seq)
			if f.Kind == "message" {
				if role, content, _ := messageOf(t, f); role == "assistant" {
					final = content
				}
			}
		}
	}
	if ackAt < 0 || firstDelta < 0 || ackAt > firstDelta {
		t.Fatalf("the durable ack must come before the first delta (ack at %d, first delta at %d)", ackAt, firstDelta)
	}
	if ack.ClientMsgID != "cm-1" || ack.Seq <= head {
		t.Fatalf("ack %+v (head was %d)", ack, head)
	}
	if final != answer || deltas.String() != final {
		t.Fatalf("deltas %q / final %q / want %q", deltas.String(), final, answer)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("live event seqs have a gap: %v", seqs)
		}
	}
	last := seqs[len(seqs)-1]

	// A second connection resuming from the middle sees exactly the rest.
	c2 := dialWS(t, srv.base, tk.AccessToken)
	from := ack.Seq - 1
	c2.Send(map[string]any{"type": "subscribe", "case_id": caseID, "since_seq": from})
	replay := c2.Until(func(f wsFrame) bool { return f.Type == "subscribed" })
	var got []uint64
	for _, f := range replay {
		if f.Type == "event" {
			got = append(got, f.Seq)
		}
	}
	if len(got) == 0 || got[0] != from+1 || got[len(got)-1] != last || uint64(len(got)) != last-from {
		t.Fatalf("resubscribe from %d: seqs %v, want %d..%d with no gaps or duplicates", from, got, from+1, last)
	}

	// A repeated client_msg_id gets the same ack and no second turn.
	requests := fake.RequestCount()
	c.Send(map[string]any{"type": "turn", "case_id": caseID, "client_msg_id": "cm-1", "text": "API returns 502 since 14:00"})
	again := c.Until(func(f wsFrame) bool { return f.Type == "ack" })
	if a := again[len(again)-1]; a.Seq != ack.Seq {
		t.Fatalf("repeat ack seq %d, first %d", a.Seq, ack.Seq)
	}
	c.Send(map[string]any{"type": "ping"})
	c.Until(func(f wsFrame) bool { return f.Type == "pong" })
	if n := fake.RequestCount(); n != requests {
		t.Fatalf("the repeat started another LLM call (%d → %d)", requests, n)
	}
	var msgs struct {
		TotalCount int `json:"total_count"`
	}
	call(srv.base, "GET", "/api/v1/cases/"+caseID+"/messages?limit=100", tk.AccessToken, nil, &msgs)
	if msgs.TotalCount != 2 {
		t.Fatalf("messages = %d, want 2", msgs.TotalCount)
	}
	// Another user cannot subscribe to it.
	other := register(t, srv.base, "ws-intruder")
	c3 := dialWS(t, srv.base, other.AccessToken)
	c3.Send(map[string]any{"type": "subscribe", "case_id": caseID, "since_seq": 0})
	if f := c3.Next(); f.Type != "error" || f.Code != "not_found" {
		t.Fatalf("intruder got %+v", f)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}

func postTurn(t *testing.T, base, token, caseID, key string, fields map[string]string) (int, http.Header, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	_ = mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/cases/"+caseID+"/turns", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

// TestRESTTurnsAgainstTheBinary: the synchronous path with Idempotency-Key
// replay, and the 202 + job polling path.
func TestRESTTurnsAgainstTheBinary(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: "Restart the pod after raising the memory limit."})
	srv := startServer(t, t.TempDir(), "--llm-base-url", fake.URL(), "--llm-model", "fake", "--turn-sync-wait", "1s")
	tk := register(t, srv.base, "rest-user")
	caseID := newCase(t, srv.base, tk.AccessToken)

	code, _, body := postTurn(t, srv.base, tk.AccessToken, caseID, "opt_msg_1700000000000_1", map[string]string{"query": "pod OOMKilled"})
	if code != 200 {
		t.Fatalf("turn: %d %s", code, body)
	}
	var tr map[string]any
	_ = json.Unmarshal(body, &tr)
	for _, f := range []string{"agent_response", "turn_number", "case_state", "suggested_actions", "attachments_processed", "milestones_completed", "progress_made"} {
		if _, ok := tr[f]; !ok {
			t.Fatalf("TurnResponse lacks %q: %s", f, body)
		}
	}
	if tr["agent_response"] != "Restart the pod after raising the memory limit." || tr["turn_number"] != float64(1) || tr["case_state"] != "inquiry" {
		t.Fatalf("TurnResponse %s", body)
	}
	if _, ok := tr["attachments_processed"].([]any); !ok {
		t.Fatalf("attachments_processed must be an array: %s", body)
	}
	requests := fake.RequestCount()
	code2, _, body2 := postTurn(t, srv.base, tk.AccessToken, caseID, "opt_msg_1700000000000_1", map[string]string{"query": "pod OOMKilled"})
	if code2 != 200 || !bytes.Equal(body, body2) {
		t.Fatalf("replay: %d %s, first %s", code2, body2, body)
	}
	if fake.RequestCount() != requests {
		t.Fatal("an Idempotency-Key replay called the LLM again")
	}

	// A slow answer: 202 + Location, then the job completes.
	fake.SetDefault(llmtest.Reply{Content: "slow but sure", TTFT: 2500 * time.Millisecond})
	code3, hdr, body3 := postTurn(t, srv.base, tk.AccessToken, caseID, "opt_msg_1700000000000_2", map[string]string{"query": "still broken"})
	if code3 != 202 || hdr.Get("Location") == "" {
		t.Fatalf("want 202 + Location, got %d %s %v", code3, body3, hdr)
	}
	loc := hdr.Get("Location")
	if !strings.HasPrefix(loc, "http://") {
		t.Fatalf("Location must be absolute: %q", loc)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var job struct {
			Status string         `json:"status"`
			Result map[string]any `json:"result"`
		}
		path := strings.TrimPrefix(loc, srv.base)
		if code, err := call(srv.base, "GET", path, tk.AccessToken, nil, &job); err != nil || code != 200 {
			t.Fatalf("poll %s: %d %v", path, code, err)
		}
		if job.Status == "completed" {
			if job.Result["agent_response"] != "slow but sure" || job.Result["turn_number"] != float64(2) {
				t.Fatalf("job result %+v", job.Result)
			}
			break
		}
		if job.Status != "pending" || time.Now().After(deadline) {
			t.Fatalf("job status %q", job.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The replay of the slow turn now gives the finished answer.
	code4, _, body4 := postTurn(t, srv.base, tk.AccessToken, caseID, "opt_msg_1700000000000_2", map[string]string{"query": "still broken"})
	if code4 != 200 || !strings.Contains(string(body4), "slow but sure") {
		t.Fatalf("replay after completion: %d %s", code4, body4)
	}
}

// TestKill9DuringStreamingTurn: the user message survives, the turn is
// marked failed after the restart, and a retry works.
func TestKill9DuringStreamingTurn(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: strings.Repeat("slow stream ", 60), ChunkChars: 4, TokensPerSec: 20})
	data := t.TempDir()
	args := []string{"--llm-base-url", fake.URL(), "--llm-model", "fake"}
	srv := startServer(t, data, args...)
	tk := register(t, srv.base, "kill-user")
	caseID := newCase(t, srv.base, tk.AccessToken)
	c := dialWS(t, srv.base, tk.AccessToken)
	c.Send(map[string]any{"type": "subscribe", "case_id": caseID, "since_seq": 0})
	c.Until(func(f wsFrame) bool { return f.Type == "subscribed" })
	c.Send(map[string]any{"type": "turn", "case_id": caseID, "client_msg_id": "k-1", "text": "disk full on db01"})
	c.Until(func(f wsFrame) bool { return f.Type == "delta" })
	srv.kill()

	fake.SetDefault(llmtest.Reply{Content: "Free space under /var/lib/postgres/wal."})
	srv = startServer(t, data, args...)
	var msgs struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	call(srv.base, "GET", "/api/v1/cases/"+caseID+"/messages?limit=100", tk.AccessToken, nil, &msgs)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Content != "disk full on db01" {
		t.Fatalf("after kill -9: %+v", msgs.Messages)
	}
	var job struct {
		Status string `json:"status"`
		Error  struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if code, err := call(srv.base, "GET", fmt.Sprintf("/api/v1/jobs/turn.%s.1", caseID), tk.AccessToken, nil, &job); err != nil || code != 200 {
		t.Fatalf("job: %d %v", code, err)
	}
	if job.Status != "failed" || !strings.Contains(job.Error.Message, "restart") {
		t.Fatalf("the interrupted turn must be failed with a reason: %+v", job)
	}
	c = dialWS(t, srv.base, tk.AccessToken)
	c.Send(map[string]any{"type": "subscribe", "case_id": caseID, "since_seq": 0})
	replay := c.Until(func(f wsFrame) bool { return f.Type == "subscribed" })
	failed := false
	for _, f := range replay {
		failed = failed || (f.Type == "event" && f.Kind == "turn_failed")
	}
	if !failed {
		t.Fatal("the replay has no turn_failed event")
	}
	c.Send(map[string]any{"type": "turn", "case_id": caseID, "client_msg_id": "k-1", "text": "disk full on db01"})
	frames := c.Until(isAnswer(2))
	ok := false
	for _, f := range frames {
		if f.Type == "event" && f.Kind == "message" {
			if role, content, turn := messageOf(t, f); role == "assistant" && turn == 2 && strings.Contains(content, "/var/lib/postgres") {
				ok = true
			}
		}
	}
	if !ok {
		t.Fatal("the retry did not produce an answer")
	}
}
