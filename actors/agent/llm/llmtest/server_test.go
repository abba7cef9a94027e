package llmtest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/goleak"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) (*llmtest.Server, *http.Client) {
	t.Helper()
	s := llmtest.New()
	t.Cleanup(s.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return s, &http.Client{Transport: tr}
}

func post(t *testing.T, ctx context.Context, c *http.Client, url, body string) *http.Response {
	t.Helper()
	res, err := postErr(ctx, c, url, body)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	return res
}

// postErr is post for goroutines other than the test's.
func postErr(ctx context.Context, c *http.Client, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.Do(req)
}

const streamBody = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`

// chunk is the part of a chat.completion.chunk the tests look at.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      *string `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		TotalTokens      int64 `json:"total_tokens"`
	} `json:"usage"`
}

// errFormat marks a stream that is not well-formed SSE.
var errFormat = errors.New("malformed stream")

// readSSE decodes every event of a stream; done reports a final [DONE].
func readSSE(r io.Reader) (chunks []chunk, done bool, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		switch {
		case !ok:
			return chunks, done, fmt.Errorf("%w: line %q is not a data line", errFormat, line)
		case done:
			return chunks, done, fmt.Errorf("%w: event after [DONE]: %s", errFormat, data)
		case data == "[DONE]":
			done = true
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return chunks, done, fmt.Errorf("%w: chunk %s: %w", errFormat, data, err)
		}
		chunks = append(chunks, c)
	}
	return chunks, done, sc.Err()
}

func TestStreamWireFormat(t *testing.T) {
	s, c := start(t)
	s.Enqueue(llmtest.Reply{
		Content:      "héllo wörld",
		ToolCalls:    []llmtest.ToolCallReply{{ID: "call_a", Name: "f", Arguments: `{"x":1}`}},
		PromptTokens: 7,
	})
	res := post(t, context.Background(), c, s.URL(), streamBody)
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d content-type %q", res.StatusCode, ct)
	}
	chunks, done, err := readSSE(res.Body)
	if err != nil || !done {
		t.Fatalf("stream ended with err=%v done=%v", err, done)
	}
	var content []string
	var args []string
	finishes := 0
	for i, ch := range chunks {
		if ch.ID != chunks[0].ID || ch.Object != "chat.completion.chunk" || ch.Model != "m" || ch.Created == 0 {
			t.Fatalf("chunk %d header = %+v", i, ch)
		}
		if ch.Usage != nil {
			if i != len(chunks)-1 || len(ch.Choices) != 0 {
				t.Fatalf("usage in chunk %d of %d with %d choices", i, len(chunks), len(ch.Choices))
			}
			if ch.Usage.PromptTokens != 7 || ch.Usage.CompletionTokens == 0 ||
				ch.Usage.TotalTokens != ch.Usage.PromptTokens+ch.Usage.CompletionTokens {
				t.Fatalf("usage = %+v", *ch.Usage)
			}
			continue
		}
		if len(ch.Choices) != 1 {
			t.Fatalf("chunk %d has %d choices", i, len(ch.Choices))
		}
		d := ch.Choices[0].Delta
		if i == 0 && (d.Role == nil || *d.Role != "assistant") {
			t.Fatalf("first chunk has no assistant role: %+v", d)
		}
		if d.Content != nil && *d.Content != "" {
			content = append(content, *d.Content)
		}
		for _, tc := range d.ToolCalls {
			if tc.ID != "" && (tc.ID != "call_a" || tc.Function.Name != "f" || tc.Type != "function") {
				t.Fatalf("tool call header = %+v", tc)
			}
			if tc.Function.Arguments != "" {
				args = append(args, tc.Function.Arguments)
			}
		}
		if f := ch.Choices[0].FinishReason; f != nil {
			finishes++
			if *f != "tool_calls" || i != len(chunks)-2 {
				t.Fatalf("finish %q in chunk %d of %d", *f, i, len(chunks))
			}
		}
	}
	if want := []string{"héll", "o wö", "rld"}; fmt.Sprint(content) != fmt.Sprint(want) {
		t.Errorf("content chunks = %q, want %q (4 characters each)", content, want)
	}
	if len(args) < 2 || strings.Join(args, "") != `{"x":1}` {
		t.Errorf("argument fragments = %q, want two or more joining to the arguments", args)
	}
	if finishes != 1 {
		t.Errorf("%d finish chunks, want 1", finishes)
	}
}

func TestStreamWithoutUsage(t *testing.T) {
	s, c := start(t)
	res := post(t, context.Background(), c, s.URL(), `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer res.Body.Close()
	chunks, done, err := readSSE(res.Body)
	if err != nil || !done {
		t.Fatalf("err=%v done=%v", err, done)
	}
	for _, ch := range chunks {
		if ch.Usage != nil {
			t.Fatalf("usage sent without include_usage: %+v", ch)
		}
	}
	if last := chunks[len(chunks)-1]; *last.Choices[0].FinishReason != "stop" {
		t.Fatalf("last chunk = %+v", last)
	}
}

func TestDisconnectAfterChunks(t *testing.T) {
	s, c := start(t)
	s.Enqueue(llmtest.Reply{Content: "aaaabbbbccccdddd", DisconnectAfterChunks: 2})
	res := post(t, context.Background(), c, s.URL(), streamBody)
	defer res.Body.Close()
	chunks, done, err := readSSE(res.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || done {
		t.Fatalf("err=%v done=%v, want an abrupt end", err, done)
	}
	if len(chunks) != 3 { // role chunk + two content chunks
		t.Fatalf("got %d chunks before the cut, want 3", len(chunks))
	}
	waitFor(t, "the handler to finish", func() bool { return s.Active() == 0 })
}

func TestPacing(t *testing.T) {
	s, c := start(t)
	s.Enqueue(llmtest.Reply{Content: strings.Repeat("x", 40), TTFT: 100 * time.Millisecond, TokensPerSec: 50})
	begin := time.Now()
	res := post(t, context.Background(), c, s.URL(), streamBody)
	defer res.Body.Close()
	if _, _, err := readSSE(res.Body); err != nil {
		t.Fatal(err)
	}
	// 10 chunks at 50/s: 9 gaps of 20ms after a 100ms TTFT.
	if took := time.Since(begin); took < 270*time.Millisecond {
		t.Fatalf("stream took %v, want at least TTFT + 9 gaps (280ms)", took)
	}
}

func TestClientDisconnectStopsStream(t *testing.T) {
	// Both waits are far longer than the test: only noticing the disconnect
	// can end the handler in time.
	for name, reply := range map[string]llmtest.Reply{
		"waiting for the first chunk": {Content: "never", TTFT: time.Hour},
		"between chunks":              {Content: "aabbccdd", ChunkChars: 2, TokensPerSec: 0.001},
	} {
		t.Run(name, func(t *testing.T) {
			s, c := start(t)
			s.SetDefault(reply)
			ctx, cancel := context.WithCancel(context.Background())
			res := post(t, ctx, c, s.URL(), streamBody)
			if reply.TTFT == 0 {
				buf := make([]byte, 64)
				if _, err := res.Body.Read(buf); err != nil {
					t.Fatalf("first read: %v", err)
				}
			}
			if s.Active() != 1 {
				t.Fatalf("Active = %d during the stream, want 1", s.Active())
			}
			cancel()
			res.Body.Close()
			waitFor(t, "the stream handler to stop", func() bool { return s.Active() == 0 })
		})
	}
}

func TestCloseStopsStreams(t *testing.T) {
	s := llmtest.New()
	s.SetDefault(llmtest.Reply{Content: "late", TTFT: time.Hour})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	errc := make(chan error, 1)
	go func() {
		res, err := postErr(context.Background(), c, s.URL(), streamBody)
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the stream to start", func() bool { return s.Active() == 1 })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a stream waiting an hour")
	}
	<-errc
	s.Close() // idempotent
}

func TestErrorReply(t *testing.T) {
	s, c := start(t)
	s.Enqueue(llmtest.Reply{Status: 429, RetryAfter: 3})
	res := post(t, context.Background(), c, s.URL(), streamBody)
	defer res.Body.Close()
	var body struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "3" ||
		body.Error.Type != "rate_limit_error" || body.Error.Message == "" {
		t.Fatalf("status %d retry-after %q body %+v", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
}

func openaiClient(s *llmtest.Server, c *http.Client) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.URL()), option.WithAPIKey("k"),
		option.WithHTTPClient(c), option.WithMaxRetries(0))
}

func TestNonStreamingCompletion(t *testing.T) {
	s, c := start(t)
	s.Enqueue(
		llmtest.Reply{Content: "plain answer", PromptTokens: 5, CompletionTokens: 2},
		llmtest.Reply{ToolCalls: []llmtest.ToolCallReply{{ID: "c1", Name: "lookup", Arguments: `{"k":"v"}`}}},
	)
	client := openaiClient(s, c)
	params := openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
	got, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got.Object != "chat.completion" || len(got.Choices) != 1 || got.Choices[0].Message.Content != "plain answer" ||
		got.Choices[0].FinishReason != "stop" || got.Usage.PromptTokens != 5 || got.Usage.CompletionTokens != 2 {
		t.Fatalf("completion = %s", got.RawJSON())
	}
	got, err = client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tc := got.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].ID != "c1" || tc[0].Function.Name != "lookup" || tc[0].Function.Arguments != `{"k":"v"}` ||
		got.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("completion = %s", got.RawJSON())
	}
	if reqs := s.Requests(); len(reqs) != 2 || reqs[0].Stream {
		t.Fatalf("requests = %+v, want two non-streaming", reqs)
	}
}

func TestModels(t *testing.T) {
	s, c := start(t)
	client := openaiClient(s, c)
	page, err := client.Models.List(context.Background())
	if err != nil {
		t.Fatalf("Models.List: %v", err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != "fake-model" {
		t.Fatalf("models = %s", page.RawJSON())
	}
}

func TestQueueMatchResponderAndDefault(t *testing.T) {
	s, c := start(t)
	client := openaiClient(s, c)
	ask := func(q string) string {
		t.Helper()
		got, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model:    "m",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(q)},
		})
		if err != nil {
			t.Fatalf("ask %q: %v", q, err)
		}
		return got.Choices[0].Message.Content
	}
	s.Enqueue(
		llmtest.Reply{Content: "for b", Match: func(r *llmtest.ChatRequest) bool { return r.LastUser() == "b" }},
		llmtest.Reply{Content: "first"},
	)
	for _, step := range [][2]string{{"a", "first"}, {"a", "ok"}, {"b", "for b"}, {"b", "ok"}} {
		if got := ask(step[0]); got != step[1] {
			t.Fatalf("ask %q = %q, want %q", step[0], got, step[1])
		}
	}
	s.SetDefault(llmtest.Reply{Content: "new default"})
	s.SetResponder(func(r *llmtest.ChatRequest) llmtest.Reply { return llmtest.Reply{Content: "echo " + r.LastUser()} })
	s.Enqueue(llmtest.Reply{Content: "queued"})
	if got := ask("z"); got != "echo z" {
		t.Fatalf("with a responder: %q", got)
	}
	s.SetResponder(nil)
	if got := ask("z"); got != "queued" {
		t.Fatalf("after the responder: %q", got)
	}
	if got := ask("z"); got != "new default" {
		t.Fatalf("default: %q", got)
	}
}

func TestForbidAndViolationsEndpoint(t *testing.T) {
	s, c := start(t)
	s.Forbid("<pii>", "tab\there")
	bodies := []string{
		`{"model":"m","messages":[{"role":"user","content":"fine"}]}`,
		`{"model":"m","messages":[{"role":"user","content":"x \u003cpii\u003e y"}]}`, // escaped
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"tab\there"}]}]}`,
		`{"model":"m","messages":[}`,
		`{"model":"","messages":[]}`,
	}
	var statuses []int
	for _, b := range bodies {
		res := post(t, context.Background(), c, s.URL(), b)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
	if fmt.Sprint(statuses) != "[200 400 400 400 400]" {
		t.Fatalf("statuses = %v", statuses)
	}
	res, err := c.Get(strings.TrimSuffix(s.URL(), "v1/") + "_fake/violations")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v []string
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if len(v) != 4 || !strings.Contains(v[0], `"<pii>"`) || !strings.Contains(v[1], "tab") ||
		!strings.Contains(v[2], "malformed") || !strings.Contains(v[3], "no model") {
		t.Fatalf("violations = %q", v)
	}
	if fmt.Sprint(v) != fmt.Sprint(s.Violations()) {
		t.Fatalf("endpoint %q differs from Violations() %q", v, s.Violations())
	}
}

func TestRequestsEndpointAndLimit(t *testing.T) {
	s, c := start(t)
	for i := range 5 {
		body := fmt.Sprintf(`{"model":"m%d","messages":[{"role":"system","content":null},`+
			`{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},`+
			`{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],`+
			`"response_format":{"type":"json_schema"}}`, i)
		res := post(t, context.Background(), c, s.URL(), body)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if i == 2 {
			s.SetRequestLimit(2)
		}
	}
	res, err := c.Get(strings.TrimSuffix(s.URL(), "v1/") + "_fake/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var reqs []llmtest.ChatRequest
	if err := json.NewDecoder(res.Body).Decode(&reqs); err != nil {
		t.Fatal(err)
	}
	if s.RequestCount() != 5 || len(reqs) != 2 || reqs[0].Model != "m3" || reqs[1].Model != "m4" {
		t.Fatalf("count %d, kept %+v", s.RequestCount(), reqs)
	}
	r := reqs[1]
	if len(r.Messages) != 3 || r.Messages[1].ToolCalls[0].Function.Name != "f" || r.Messages[2].ToolCallID != "t" ||
		!r.HasToolResult() || r.Tools[0].Function.Name != "f" || !bytes.Contains(r.ResponseFormat, []byte("json_schema")) {
		t.Fatalf("decoded request = %+v", r)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	s, c := start(t)
	s.SetResponder(func(r *llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Content: "reply to " + r.LastUser(), TokensPerSec: 200, TTFT: 10 * time.Millisecond}
	})
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"model":"m","stream":true,"messages":[{"role":"user","content":"q%d"}]}`, i)
			res, err := postErr(context.Background(), c, s.URL(), body)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			chunks, done, err := readSSE(res.Body)
			var text strings.Builder
			for _, ch := range chunks {
				if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != nil {
					text.WriteString(*ch.Choices[0].Delta.Content)
				}
			}
			if err != nil || !done || text.String() != fmt.Sprintf("reply to q%d", i) {
				errs <- fmt.Errorf("stream %d: %q done=%v err=%v", i, text.String(), done, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestParseScript(t *testing.T) {
	got, err := llmtest.ParseScript([]byte(`[
		{"content":"hi","ttft":"300ms","tokens_per_sec":50,"chunk_chars":2},
		{"tool_calls":[{"id":"c","name":"n","arguments":"{}"}]},
		{"status":429,"retry_after":1},
		{"content":"cut","disconnect_after_chunks":1,"prompt_tokens":3,"completion_tokens":4}]`))
	if err != nil {
		t.Fatalf("ParseScript: %v", err)
	}
	if len(got) != 4 || got[0].TTFT != 300*time.Millisecond || got[0].TokensPerSec != 50 || got[0].ChunkChars != 2 ||
		got[1].ToolCalls[0].Name != "n" || got[2].Status != 429 || got[2].RetryAfter != 1 ||
		got[3].DisconnectAfterChunks != 1 || got[3].CompletionTokens != 4 {
		t.Fatalf("script = %+v", got)
	}
	for _, bad := range []string{`{}`, `[{"contnet":"x"}]`, `[{"ttft":"soon"}]`, `[{"status":99}]`, `[] x`} {
		if _, err := llmtest.ParseScript([]byte(bad)); err == nil {
			t.Errorf("ParseScript(%s) succeeded", bad)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
