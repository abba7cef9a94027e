package llm_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

// rawServer answers every request with body as an event stream.
func rawServer(t *testing.T, body string) llm.ProviderConfig {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return llm.ProviderConfig{Name: "raw", BaseURL: srv.URL + "/v1/", Model: "raw-model"}
}

// TestStreamWireFormats feeds the client streams as various servers write
// them, each a complete reply.
func TestStreamWireFormats(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		want   llm.Response
		deltas []string
	}{
		{
			name: "crlf, comments, event names, no [DONE]",
			body: ": keep-alive\r\n\r\nevent: chunk\r\nid: 1\r\ndata: {\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n" +
				": ping\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\r\n\r\n",
			want:   llm.Response{Content: "Hello", FinishReason: "stop", Provider: "raw", Model: "m1"},
			deltas: []string{"Hel", "lo"},
		},
		{
			name: "data split over lines, empty keep-alive event",
			body: "data: {\"choices\":[{\"index\":0,\n" + "data: \"delta\":{\"content\":\"a\"}}]}\n\n" +
				"data: \n\n" +
				"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n",
			want:   llm.Response{Content: "a", FinishReason: "length", Provider: "raw", Model: "raw-model"},
			deltas: []string{"a"},
		},
		{
			name: "tool calls: -1 index, sparse index, id and name in a later fragment",
			body: sse(
				`{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":-1,"id":"call_a","type":"function","function":{"name":"df","arguments":""}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"arguments":"{}"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"/\"}"}},{"index":2,"id":"call_c","function":{"name":"up"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
				`{"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}`,
				`[DONE]`),
			want: llm.Response{
				ToolCalls: []llm.ToolCall{
					{ID: "call_a", Name: "df", Arguments: `{"path":"/"}`},
					{}, // index 1 was never sent: a placeholder, as the SDK's accumulator leaves
					{ID: "call_c", Name: "up", Arguments: "{}"},
				},
				FinishReason: "tool_calls", Usage: llm.Usage{PromptTokens: 30, CompletionTokens: 12},
				Provider: "raw", Model: "raw-model",
			},
		},
		{
			name: "other choices are ignored",
			body: sse(
				`{"choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"yes"}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`),
			want:   llm.Response{Content: "yes", FinishReason: "stop", Provider: "raw", Model: "raw-model"},
			deltas: []string{"yes"},
		},
		{
			name: "multi-byte text split across chunks",
			body: sse(`{"choices":[{"index":0,"delta":{"content":"Gr\u00f6"}}]}`,
				`{"choices":[{"index":0,"delta":{"content":"ße 😀"},"finish_reason":"stop"}]}`, `[DONE]`),
			want:   llm.Response{Content: "Größe 😀", FinishReason: "stop", Provider: "raw", Model: "raw-model"},
			deltas: []string{"Grö", "ße 😀"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpenAI(t, rawServer(t, tc.body), testConfig(t))
			var d deltas
			resp, err := o.Stream(context.Background(), userRequest("hi"), d.add)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if !reflect.DeepEqual(resp, tc.want) {
				t.Fatalf("response = %+v\nwant       %+v", resp, tc.want)
			}
			if got := d.list(); !reflect.DeepEqual(got, tc.deltas) && (len(got) > 0 || len(tc.deltas) > 0) {
				t.Fatalf("deltas = %q, want %q", got, tc.deltas)
			}
		})
	}
}

// sse writes each data as one event.
func sse(data ...string) string {
	var b strings.Builder
	for _, d := range data {
		b.WriteString("data: " + d + "\n\n")
	}
	return b.String()
}

// TestStreamProtocolFailures: streams that end badly give readable reasons
// and never a partial Response.
func TestStreamProtocolFailures(t *testing.T) {
	for _, tc := range []struct {
		name, body, reason string
		is                 error
	}{
		{"no finish before [DONE]", sse(`{"choices":[{"index":0,"delta":{"content":"x"}}]}`, `[DONE]`),
			"stream interrupted: ended before the model finished", llm.ErrInterrupted},
		{"no finish at the end of the body", sse(`{"choices":[{"index":0,"delta":{"content":"x"}}]}`),
			"stream interrupted: ended before the model finished", llm.ErrInterrupted},
		{"no choices", sse(`{"choices":[]}`, `[DONE]`), "bad response: no choices", nil},
		{"a JSON completion instead of a stream", `{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}]}`,
			"bad response: no choices", nil},
		{"malformed chunk", sse(`{"choices":[{"index":0,"delta":{"content":"x"}}]}`, `{"choices":[`),
			"bad stream: a chunk is not valid JSON", nil},
		{"chunk that is not an object", sse(`["x"]`), "bad stream: a chunk is not valid JSON", nil},
		{"choice index out of range", sse(`{"choices":[{"index":128,"delta":{"content":"x"}}]}`),
			"bad stream: a chunk did not fit the completion so far", nil},
		{"tool index jumps too far", sse(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":500,"id":"c"}]}}]}`),
			"bad stream: a chunk did not fit the completion so far", nil},
		{"error event", sse(`{"choices":[{"index":0,"delta":{"content":"x"}}]}`,
			`{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`),
			"error event in stream: The server had an error while processing your request.", nil},
		{"typed error event", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
			"error event in stream: Overloaded", nil},
		{"error event without a message", sse(`{"error":{"code":500}}`), `error event in stream: {"code":500}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOpenAI(t, rawServer(t, tc.body), testConfig(t))
			resp, err := o.Stream(context.Background(), userRequest("hi"), nil)
			pe := providerError(t, err)
			if pe.Reason != tc.reason || pe.Provider != "raw" || pe.Status != 0 {
				t.Fatalf("error %+v, want reason %q", pe, tc.reason)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v does not match %v", err, tc.is)
			}
			if !reflect.DeepEqual(resp, llm.Response{}) {
				t.Fatalf("failed call returned %+v", resp)
			}
		})
	}
}

func TestStreamErrorEventFromFake(t *testing.T) {
	srv := fake(t)
	srv.Enqueue(llmtest.Reply{Content: "Looking at the", StreamError: "model overloaded"})
	o := newOpenAI(t, providerFor("p", srv), testConfig(t))
	var d deltas
	_, err := o.Stream(context.Background(), userRequest("hi"), d.add)
	pe := providerError(t, err)
	if pe.Reason != "error event in stream: model overloaded" {
		t.Fatalf("reason = %q", pe.Reason)
	}
	if d.joined() != "Looking at the" {
		t.Fatalf("delivered %q before the error, want all of the content", d.joined())
	}
}

// TestChainFallsBackOnErrorEvent: an error event before any text hands
// the call to the fallback; after text it ends the call.
func TestChainFallsBackOnErrorEvent(t *testing.T) {
	primary, backup := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{StreamError: "overloaded"})
	backup.SetDefault(llmtest.Reply{Content: "from the backup"})
	c, err := llm.NewChain(testConfig(t, providerFor("primary", primary), providerFor("backup", backup)), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Stream(context.Background(), userRequest("hi"), nil)
	if err != nil || resp.Content != "from the backup" || resp.Provider != "backup" {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	primary.SetDefault(llmtest.Reply{Content: "half an", StreamError: "overloaded"})
	_, err = c.Stream(context.Background(), userRequest("hi"), nil)
	if pe := providerError(t, err); pe.Provider != "primary" || !strings.HasPrefix(pe.Reason, "error event in stream") {
		t.Fatalf("after text: %+v, want the primary's error and no fallback", pe)
	}
	if n := backup.RequestCount(); n != 1 {
		t.Fatalf("backup saw %d requests, want 1", n)
	}
}

// TestStreamLongToolArguments: arguments of ~100 KB in thousands of
// fragments arrive intact.
func TestStreamLongToolArguments(t *testing.T) {
	srv := fake(t)
	args := `{"notes":"` + strings.Repeat("línea ✓ ", 12_000) + `"}`
	srv.Enqueue(llmtest.Reply{Content: "Recording.", ToolCalls: []llmtest.ToolCallReply{
		{ID: "call_1", Name: "record", Arguments: args},
	}, ChunkChars: 7})
	o := newOpenAI(t, providerFor("p", srv), testConfig(t))
	resp, err := o.Stream(context.Background(), userRequest("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Arguments != args || resp.Content != "Recording." {
		t.Fatalf("got %d calls, content %q", len(resp.ToolCalls), resp.Content)
	}
}

// TestStreamReusesConnections: a stream read past [DONE] to the end of the
// response leaves its connection to the next request.
func TestStreamReusesConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, sse(`{"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}`))
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
		w.(http.Flusher).Flush()
		// The end of the response comes a moment later, as it may from a
		// real server, not in the same read as [DONE].
		time.Sleep(20 * time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	o := newOpenAI(t, llm.ProviderConfig{Name: "p", BaseURL: srv.URL + "/v1/", Model: "m"}, testConfig(t))
	for range 3 {
		if resp, err := o.Stream(context.Background(), userRequest("hi"), nil); err != nil || resp.Content != "ok" {
			t.Fatalf("Stream: %+v, %v", resp, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 streams used %d connections, want 1", n)
	}
}

// TestStreamDoesNotWaitForAnOpenEnd: a server that keeps the response open
// after [DONE] does not hold the answer back.
func TestStreamDoesNotWaitForAnOpenEnd(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, sse(`{"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}`, `[DONE]`))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	cfg := testConfig(t)
	cfg.AttemptTimeout = time.Minute
	o := newOpenAI(t, llm.ProviderConfig{Name: "p", BaseURL: srv.URL + "/v1/", Model: "m"}, cfg)
	start := time.Now()
	resp, err := o.Stream(context.Background(), userRequest("hi"), nil)
	if err != nil || resp.Content != "ok" {
		t.Fatalf("Stream: %+v, %v", resp, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the answer came %v after [DONE], want about 250ms", d)
	}
}
