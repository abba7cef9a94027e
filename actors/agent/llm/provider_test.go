package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

func TestStreamDeliversContentInOrder(t *testing.T) {
	srv := fake(t)
	const text = "Check the pod's liveness probe: it fails after 30s — see kubectl describe."
	srv.Enqueue(llmtest.Reply{Content: text, ChunkChars: 3, PromptTokens: 42, CompletionTokens: 25})
	p := providerFor("primary", srv)
	p.MaxTokens = 512
	o := newOpenAI(t, p, testConfig(t))

	var d deltas
	temp := 0.2
	req := userRequest("why does my pod restart?")
	req.Temperature = &temp
	resp, err := o.Stream(context.Background(), req, d.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	got := d.list()
	if len(got) < 10 {
		t.Fatalf("got %d deltas, want the content in many small chunks", len(got))
	}
	if joined := d.joined(); joined != text {
		t.Fatalf("deltas joined = %q, want %q", joined, text)
	}
	want := llm.Response{
		Content:      text,
		FinishReason: "stop",
		Usage:        llm.Usage{PromptTokens: 42, CompletionTokens: 25},
		Provider:     "primary",
		Model:        "model-primary",
	}
	if !reflect.DeepEqual(resp, want) {
		t.Fatalf("response = %+v\nwant       %+v", resp, want)
	}

	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if !r.Stream || r.StreamOptions == nil || !r.StreamOptions.IncludeUsage {
		t.Errorf("request stream=%v stream_options=%+v, want streaming with include_usage", r.Stream, r.StreamOptions)
	}
	if r.Model != "model-primary" || r.MaxTokens == nil || *r.MaxTokens != 512 ||
		r.Temperature == nil || *r.Temperature != 0.2 {
		t.Errorf("request model=%q max_tokens=%v temperature=%v", r.Model, r.MaxTokens, r.Temperature)
	}
	if len(r.Messages) != 2 || r.Messages[0].Role != "system" || r.Messages[1].Content != "why does my pod restart?" {
		t.Errorf("request messages = %+v", r.Messages)
	}
	if len(r.Tools) != 0 || len(r.ResponseFormat) != 0 {
		t.Errorf("request has tools %v / response_format %s, want none", r.Tools, r.ResponseFormat)
	}
}

func TestStreamAccumulatesToolCalls(t *testing.T) {
	srv := fake(t)
	calls := []llmtest.ToolCallReply{
		{ID: "call_1", Name: "search_logs", Arguments: `{"query":"OOMKilled","since":"1h"}`},
		{ID: "call_2", Name: "get_metrics", Arguments: `{"name":"memory_working_set_bytes"}`},
	}
	srv.Enqueue(llmtest.Reply{ToolCalls: calls, ChunkChars: 5})
	o := newOpenAI(t, providerFor("primary", srv), testConfig(t))

	var d deltas
	resp, err := o.Stream(context.Background(), userRequest("pod keeps dying"), d.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if got := d.list(); len(got) != 0 {
		t.Errorf("onDelta got %q, want no content deltas for a tool-call answer", got)
	}
	want := []llm.ToolCall{
		{ID: "call_1", Name: "search_logs", Arguments: calls[0].Arguments},
		{ID: "call_2", Name: "get_metrics", Arguments: calls[1].Arguments},
	}
	if !reflect.DeepEqual(resp.ToolCalls, want) {
		t.Fatalf("tool calls = %+v, want %+v", resp.ToolCalls, want)
	}
	if resp.FinishReason != "tool_calls" || resp.Content != "" {
		t.Fatalf("finish=%q content=%q, want tool_calls and no content", resp.FinishReason, resp.Content)
	}
	if resp.Usage.CompletionTokens == 0 || resp.Usage.PromptTokens == 0 {
		t.Errorf("usage = %+v, want the fake's rough counts", resp.Usage)
	}
}

func TestRequestConversion(t *testing.T) {
	srv := fake(t)
	o := newOpenAI(t, providerFor("primary", srv), testConfig(t))
	schema := map[string]any{
		"type":       "object",
		"properties": map[string]any{"hypothesis": map[string]any{"type": "string"}},
		"required":   []any{"hypothesis"},
	}
	req := llm.Request{
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "sys"},
			{Role: llm.RoleUser, Content: "disk full?"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_9", Name: "df", Arguments: `{"path":"/"}`}}},
			{Role: llm.RoleTool, ToolCallID: "call_9", Content: "/ 98% used"},
			{Role: llm.RoleAssistant, Content: "The root volume is nearly full."},
			{Role: llm.RoleUser, Content: "what now?"},
		},
		Tools: []llm.Tool{{
			Name:        "df",
			Description: "Disk usage of a path",
			Parameters:  map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
		}},
		ResponseFormat: &llm.JSONSchema{Name: "diagnosis", Schema: schema},
	}
	if _, err := o.Stream(context.Background(), req, nil); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	r := srv.Requests()[0]
	roles := []string{}
	for _, m := range r.Messages {
		roles = append(roles, m.Role)
	}
	if want := []string{"system", "user", "assistant", "tool", "assistant", "user"}; !reflect.DeepEqual(roles, want) {
		t.Fatalf("roles = %v, want %v", roles, want)
	}
	tc := r.Messages[2].ToolCalls
	if len(tc) != 1 || tc[0].ID != "call_9" || tc[0].Type != "function" ||
		tc[0].Function.Name != "df" || tc[0].Function.Arguments != `{"path":"/"}` {
		t.Errorf("assistant tool calls = %+v", tc)
	}
	if m := r.Messages[3]; m.ToolCallID != "call_9" || m.Content != "/ 98% used" {
		t.Errorf("tool message = %+v", m)
	}
	if len(r.Tools) != 1 || r.Tools[0].Type != "function" || r.Tools[0].Function.Name != "df" ||
		r.Tools[0].Function.Description != "Disk usage of a path" ||
		!strings.Contains(string(r.Tools[0].Function.Parameters), `"path"`) {
		t.Errorf("tools = %+v", r.Tools)
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string         `json:"name"`
			Schema map[string]any `json:"schema"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(r.ResponseFormat, &rf); err != nil {
		t.Fatalf("response_format %s: %v", r.ResponseFormat, err)
	}
	if rf.Type != "json_schema" || rf.JSONSchema.Name != "diagnosis" || rf.JSONSchema.Schema["type"] != "object" {
		t.Errorf("response_format = %s", r.ResponseFormat)
	}
}

func TestBadRequestIsNotSent(t *testing.T) {
	srv := fake(t)
	o := newOpenAI(t, providerFor("primary", srv), testConfig(t))
	for name, req := range map[string]llm.Request{
		"no messages":  {},
		"unknown role": {Messages: []llm.Message{{Role: "wizard", Content: "x"}}},
		"tool no id":   {Messages: []llm.Message{{Role: llm.RoleTool, Content: "x"}}},
		"schema nil":   {Messages: []llm.Message{{Role: llm.RoleUser}}, ResponseFormat: &llm.JSONSchema{Name: "x"}},
	} {
		if _, err := o.Stream(context.Background(), req, nil); !errors.Is(err, llm.ErrBadRequest) {
			t.Errorf("%s: err = %v, want ErrBadRequest", name, err)
		}
	}
	if n := srv.RequestCount(); n != 0 {
		t.Fatalf("server saw %d requests, want none", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv := fake(t)
	srv.Enqueue(llmtest.Reply{Status: 429, RetryAfter: 1}, llmtest.Reply{Content: "after the wait"})
	cfg := testConfig(t)
	cfg.MaxRetries = 2
	o := newOpenAI(t, providerFor("primary", srv), cfg)

	start := time.Now()
	resp, err := o.Stream(context.Background(), userRequest("hi"), nil)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if resp.Content != "after the wait" {
		t.Fatalf("content = %q", resp.Content)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Fatalf("server saw %d requests, want 2 (one 429, one retry)", n)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %v, want the 1s Retry-After honoured", waited)
	}
}

func TestStatusReasons(t *testing.T) {
	for _, tc := range []struct {
		status  int
		retries int
		reason  string
		calls   int
	}{
		{401, 2, "unauthorized (401): check the API key", 1},
		{403, 2, "forbidden (403): check the API key and its permissions", 1},
		{404, 2, "model not found (404): The model `model-p` does not exist.", 1},
		{400, 2, "bad request (400): Bad Request", 1},
		{500, -1, "server error (500)", 1},
		{503, 1, "server error (503), retried 1 time", 2},
		{429, 2, "rate limited (429), retried 2 times", 3},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := fake(t)
			srv.SetDefault(llmtest.Reply{Status: tc.status})
			cfg := testConfig(t)
			cfg.MaxRetries = tc.retries
			o := newOpenAI(t, providerFor("p", srv), cfg)
			_, err := o.Stream(context.Background(), userRequest("hi"), nil)
			pe := providerError(t, err)
			if pe.Reason != tc.reason || pe.Status != tc.status || pe.Provider != "p" {
				t.Fatalf("error = %+v, want reason %q status %d", pe, tc.reason, tc.status)
			}
			if n := srv.RequestCount(); n != tc.calls {
				t.Fatalf("server saw %d requests, want %d", n, tc.calls)
			}
			if strings.Contains(err.Error(), secretKey) {
				t.Fatalf("error text leaks the API key: %v", err)
			}
		})
	}
}

func TestAttemptTimeoutBeforeFirstChunk(t *testing.T) {
	srv := fake(t)
	srv.Enqueue(llmtest.Reply{Content: "too late", TTFT: time.Minute})
	cfg := testConfig(t)
	cfg.AttemptTimeout = 200 * time.Millisecond
	o := newOpenAI(t, providerFor("slow", srv), cfg)
	_, err := o.Stream(context.Background(), userRequest("hi"), nil)
	pe := providerError(t, err)
	if pe.Reason != "timed out after 200ms" || !errors.Is(err, llm.ErrTimeout) {
		t.Fatalf("error = %v (reason %q), want a readable timeout wrapping ErrTimeout", err, pe.Reason)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attempt timeout %v looks like the caller's own cancellation or deadline", err)
	}
}

func TestAttemptTimeoutIsAStallTimeout(t *testing.T) {
	srv := fake(t)
	// 60 chunks at 30 tokens/s take ~2s in all, twice the attempt timeout,
	// but no gap (~33ms) comes near it, even on a loaded CI machine: the
	// stream must survive.
	srv.Enqueue(llmtest.Reply{Content: strings.Repeat("abcd", 60), TokensPerSec: 30})
	// Then a stream that stalls for 5s between chunks must not.
	srv.Enqueue(llmtest.Reply{Content: "one two three", TokensPerSec: 0.2})
	cfg := testConfig(t)
	cfg.AttemptTimeout = time.Second
	o := newOpenAI(t, providerFor("p", srv), cfg)

	resp, err := o.Stream(context.Background(), userRequest("long"), nil)
	if err != nil || resp.Content != strings.Repeat("abcd", 60) {
		t.Fatalf("steady stream: content %q, err %v", resp.Content, err)
	}
	var d deltas
	_, err = o.Stream(context.Background(), userRequest("stall"), d.add)
	pe := providerError(t, err)
	if pe.Reason != "timed out after 1s" {
		t.Fatalf("stalled stream: reason %q, want a timeout", pe.Reason)
	}
	if d.joined() != "one " {
		t.Fatalf("stalled stream delivered %q before the stall, want %q", d.joined(), "one ")
	}
}

func TestStreamInterrupted(t *testing.T) {
	srv := fake(t)
	srv.Enqueue(llmtest.Reply{Content: "first second third", DisconnectAfterChunks: 2})
	o := newOpenAI(t, providerFor("p", srv), testConfig(t))
	var d deltas
	_, err := o.Stream(context.Background(), userRequest("hi"), d.add)
	pe := providerError(t, err)
	if pe.Reason != "stream interrupted: unexpected EOF" || !errors.Is(err, llm.ErrInterrupted) {
		t.Fatalf("error = %v (reason %q)", err, pe.Reason)
	}
	if got := d.joined(); got != "first se" {
		t.Fatalf("delivered %q before the cut, want %q", got, "first se")
	}
}

func TestCancelReturnsPromptly(t *testing.T) {
	srv := fake(t)
	srv.Enqueue(llmtest.Reply{Content: "never", TTFT: time.Minute})
	srv.Enqueue(llmtest.Reply{Content: strings.Repeat("slow ", 100), TokensPerSec: 5})
	cfg := testConfig(t)
	cfg.AttemptTimeout = time.Minute
	o := newOpenAI(t, providerFor("p", srv), cfg)

	t.Run("waiting for the first chunk", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var d deltas
		ch := streamAsync(ctx, o, userRequest("hi"), &d)
		waitFor(t, "the request to arrive", func() bool { return srv.RequestCount() == 1 })
		cancel()
		r := await(t, ch)
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", r.err)
		}
		var pe *llm.ProviderError
		if errors.As(r.err, &pe) {
			t.Fatalf("cancellation reported as a provider failure: %v", r.err)
		}
	})
	t.Run("mid-stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var d deltas
		ch := streamAsync(ctx, o, userRequest("hi"), &d)
		waitFor(t, "the first delta", func() bool { return len(d.list()) > 0 })
		cancel()
		if r := await(t, ch); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", r.err)
		}
	})
}

func TestForbiddenTextIsRecorded(t *testing.T) {
	srv := fake(t)
	srv.Forbid("hunter2", "<secret>")
	o := newOpenAI(t, providerFor("p", srv), testConfig(t))

	if _, err := o.Stream(context.Background(), userRequest("harmless"), nil); err != nil {
		t.Fatalf("clean request: %v", err)
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Fatalf("violations after a clean request: %v", v)
	}
	// "<" is escaped as \u003c in JSON: the fake must still see it.
	_, err := o.Stream(context.Background(), userRequest("my password is hunter2 and <secret>"), nil)
	pe := providerError(t, err)
	if pe.Status != 400 {
		t.Fatalf("forbidden request answered %+v, want 400", pe)
	}
	v := srv.Violations()
	if len(v) != 1 || !strings.Contains(v[0], "hunter2") {
		t.Fatalf("violations = %q, want one naming the forbidden text", v)
	}
}

// TestStreamToleratesQuirkyServers feeds the client a stream whose chunk ids
// vary and whose usage chunk has none, as some OpenAI-compatible servers do.
func TestStreamToleratesQuirkyServers(t *testing.T) {
	const stream = `data: {"id":"a","object":"chat.completion.chunk","model":"q","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}

data: {"id":"b","object":"chat.completion.chunk","model":"q","choices":[{"index":0,"delta":{"content":"lo"}}]}

data: {"id":"c","object":"chat.completion.chunk","model":"q","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}

data: [DONE]

`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	}))
	t.Cleanup(srv.Close)
	o := newOpenAI(t, llm.ProviderConfig{Name: "q", BaseURL: srv.URL + "/v1/", Model: "q"}, testConfig(t))
	var d deltas
	resp, err := o.Stream(context.Background(), userRequest("hi"), d.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if resp.Content != "Hello" || d.joined() != "Hello" || resp.FinishReason != "stop" || resp.Usage.CompletionTokens != 2 {
		t.Fatalf("response = %+v, deltas %q", resp, d.list())
	}
}

// TestWrongBaseURLSaysSo: a base URL without the /v1/ path (the usual
// mistake with Ollama or vLLM) is answered 404 without naming a model, and
// the reason points at the base URL instead of claiming the model is
// missing.
func TestWrongBaseURLSaysSo(t *testing.T) {
	srv := fake(t)
	p := providerFor("ollama", srv)
	p.BaseURL = strings.TrimSuffix(srv.URL(), "v1/")
	o := newOpenAI(t, p, testConfig(t))
	_, err := o.Stream(context.Background(), userRequest("hi"), nil)
	pe := providerError(t, err)
	if pe.Status != 404 || !strings.Contains(pe.Reason, "check the base URL") || strings.Contains(pe.Reason, "model not found") {
		t.Fatalf("error = %+v, want a 404 that points at the base URL", pe)
	}
}
