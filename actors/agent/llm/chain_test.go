package llm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

func newChain(t *testing.T, cfg llm.Config) (*llm.Chain, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	c, err := llm.NewChain(cfg, zap.New(core))
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	return c, logs
}

// assertLogsClean checks that no log entry carries the key or the prompt.
func assertLogsClean(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += fmt.Sprintf(" %s=%v", k, v)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("log entry %q contains %q", text, s)
			}
		}
	}
}

func TestChainFallsBackOnServerError(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Status: 500})
	fallback.SetDefault(llmtest.Reply{Content: "answer from the fallback"})
	cfg := testConfig(t, providerFor("primary", primary), providerFor("fallback", fallback))
	cfg.MaxRetries = 1
	c, logs := newChain(t, cfg)

	const prompt = "my confidential stack trace"
	var d deltas
	resp, err := c.Stream(context.Background(), userRequest(prompt), d.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if resp.Provider != "fallback" || resp.Model != "model-fallback" || resp.Content != "answer from the fallback" {
		t.Fatalf("response = %+v, want the fallback's answer", resp)
	}
	if d.joined() != resp.Content {
		t.Fatalf("deltas %q, want the fallback's content", d.joined())
	}
	if n := primary.RequestCount(); n != 2 {
		t.Fatalf("primary saw %d requests, want 2 (first try and one retry)", n)
	}
	if n := fallback.RequestCount(); n != 1 {
		t.Fatalf("fallback saw %d requests, want 1", n)
	}
	failed := logs.FilterMessage("llm provider failed").All()
	if len(failed) != 1 {
		t.Fatalf("logged %d provider failures, want 1: %v", len(failed), logs.All())
	}
	if f := failed[0].ContextMap(); f["provider"] != "primary" || f["status"] != int64(500) ||
		f["reason"] != "server error (500), retried 1 time" {
		t.Fatalf("failure log fields = %v", f)
	}
	assertLogsClean(t, logs, secretKey, prompt)
}

func TestChainFallsBackWhenCutBeforeContent(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Content: "lost", DisconnectAfterChunks: -1})
	fallback.SetDefault(llmtest.Reply{Content: "rescued"})
	c, _ := newChain(t, testConfig(t, providerFor("primary", primary), providerFor("fallback", fallback)))

	var d deltas
	resp, err := c.Stream(context.Background(), userRequest("hi"), d.add)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if resp.Provider != "fallback" || d.joined() != "rescued" {
		t.Fatalf("provider %q delivered %q, want the fallback's %q", resp.Provider, d.joined(), "rescued")
	}
	if primary.RequestCount() != 1 {
		t.Fatalf("primary saw %d requests, want 1", primary.RequestCount())
	}
}

func TestChainFailsWhenCutAfterContent(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Content: "The disk is almost", DisconnectAfterChunks: 3})
	c, logs := newChain(t, testConfig(t, providerFor("primary", primary), providerFor("fallback", fallback)))

	var d deltas
	_, err := c.Stream(context.Background(), userRequest("hi"), d.add)
	pe := providerError(t, err)
	if pe.Provider != "primary" || pe.Reason != "stream interrupted: unexpected EOF" {
		t.Fatalf("error = %+v, want the primary's interruption", pe)
	}
	if errors.Is(err, llm.ErrAllProvidersFailed) {
		t.Fatalf("error %v claims every provider failed; the fallback must not be tried", err)
	}
	if d.joined() != "The disk is " {
		t.Fatalf("delivered %q, want the three chunks sent before the cut", d.joined())
	}
	if n := fallback.RequestCount(); n != 0 {
		t.Fatalf("fallback saw %d requests after text was delivered, want 0", n)
	}
	failed := logs.FilterMessage("llm provider failed").All()
	if len(failed) != 1 || failed[0].ContextMap()["after_output"] != true {
		t.Fatalf("failure logs = %v", failed)
	}
}

func TestChainFallsBackOnAttemptTimeout(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Content: "late", TTFT: time.Minute})
	fallback.SetDefault(llmtest.Reply{Content: "on time"})
	cfg := testConfig(t, providerFor("primary", primary), providerFor("fallback", fallback))
	cfg.AttemptTimeout = 150 * time.Millisecond
	c, logs := newChain(t, cfg)

	resp, err := c.Stream(context.Background(), userRequest("hi"), nil)
	if err != nil || resp.Provider != "fallback" {
		t.Fatalf("resp %+v err %v, want the fallback's answer", resp, err)
	}
	failed := logs.FilterMessage("llm provider failed").All()
	if len(failed) != 1 || failed[0].ContextMap()["reason"] != "timed out after 150ms" {
		t.Fatalf("failure logs = %v", failed)
	}
}

func TestChainAllProvidersFail(t *testing.T) {
	a, b, gone := fake(t), fake(t), llmtest.New()
	a.SetDefault(llmtest.Reply{Status: 401})
	b.SetDefault(llmtest.Reply{Status: 404})
	deadURL := gone.URL()
	gone.Close() // nothing listens there any more
	c, _ := newChain(t, testConfig(t,
		providerFor("openai", a),
		providerFor("ollama", b),
		llm.ProviderConfig{Name: "vllm", BaseURL: deadURL, Model: "m"},
	))

	_, err := c.Stream(context.Background(), userRequest("hi"), nil)
	if !errors.Is(err, llm.ErrAllProvidersFailed) {
		t.Fatalf("err = %v, want ErrAllProvidersFailed", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"openai: unauthorized (401): check the API key",
		"ollama: model not found (404): The model `model-ollama` does not exist.",
		"vllm: connection failed: ",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if pe := providerError(t, err); pe.Provider != "openai" || pe.Status != 401 {
		t.Errorf("first provider error = %+v", pe)
	}
}

func TestChainCancelReturnsPromptly(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Content: "never", TTFT: time.Minute})
	cfg := testConfig(t, providerFor("primary", primary), providerFor("fallback", fallback))
	cfg.AttemptTimeout = time.Minute
	c, _ := newChain(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var d deltas
	ch := streamAsync(ctx, c, userRequest("hi"), &d)
	waitFor(t, "the primary to be asked", func() bool { return primary.RequestCount() == 1 })
	cancel()
	r := await(t, ch)
	if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, llm.ErrAllProvidersFailed) {
		t.Fatalf("err = %v, want a wrapped context.Canceled", r.err)
	}
	if n := fallback.RequestCount(); n != 0 {
		t.Fatalf("fallback saw %d requests after cancellation", n)
	}
}

func TestChainTurnTimeout(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Content: "never", TTFT: time.Minute})
	cfg := testConfig(t, providerFor("primary", primary), providerFor("fallback", fallback))
	cfg.AttemptTimeout = time.Minute
	cfg.TurnTimeout = 200 * time.Millisecond
	c, _ := newChain(t, cfg)

	_, err := c.Stream(context.Background(), userRequest("hi"), nil)
	pe := providerError(t, err)
	if pe.Reason != "timed out after 200ms (whole turn)" || !errors.Is(err, llm.ErrTimeout) {
		t.Fatalf("err = %v (reason %q), want the turn timeout", err, pe.Reason)
	}
	if n := fallback.RequestCount(); n != 0 {
		t.Fatalf("fallback saw %d requests after the turn ran out", n)
	}
}

func TestChainSkipsFallbackWithoutTools(t *testing.T) {
	primary, fallback := fake(t), fake(t)
	primary.SetDefault(llmtest.Reply{Status: 500})
	noTools := false
	fb := providerFor("small", fallback)
	fb.Tools = &noTools
	c, _ := newChain(t, testConfig(t, providerFor("primary", primary), fb))
	if !c.SupportsTools() {
		t.Fatal("SupportsTools = false, want the primary's (nil = supported)")
	}

	req := userRequest("hi")
	req.Tools = []llm.Tool{{Name: "search_logs"}}
	_, err := c.Stream(context.Background(), req, nil)
	if !errors.Is(err, llm.ErrAllProvidersFailed) || !strings.Contains(err.Error(), "small: skipped: does not support tools") {
		t.Fatalf("err = %v, want the tool-less fallback skipped", err)
	}
	if fallback.RequestCount() != 0 {
		t.Fatal("a fallback without tool support was sent a tool request")
	}
	// Without tools the same fallback is used.
	fallback.SetDefault(llmtest.Reply{Content: "plain"})
	if resp, err := c.Stream(context.Background(), userRequest("hi"), nil); err != nil || resp.Provider != "small" {
		t.Fatalf("resp %+v err %v, want the fallback's answer", resp, err)
	}
}

func TestChainConcurrentStreams(t *testing.T) {
	srv := fake(t)
	srv.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Content: "echo: " + req.LastUser(), TokensPerSec: 500}
	})
	c, _ := newChain(t, testConfig(t, providerFor("p", srv)))

	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			var d deltas
			q := fmt.Sprintf("question %d", i)
			resp, err := c.Stream(context.Background(), userRequest(q), d.add)
			switch {
			case err != nil:
				errs <- err
			case resp.Content != "echo: "+q || d.joined() != resp.Content:
				errs <- fmt.Errorf("stream %d: content %q, deltas %q", i, resp.Content, d.joined())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.RequestCount(); got != n {
		t.Fatalf("server saw %d requests, want %d", got, n)
	}
}

func TestNewChainRejectsBadConfig(t *testing.T) {
	good := llm.ProviderConfig{Name: "a", BaseURL: "http://localhost:11434/v1/", Model: "llama3.1"}
	for name, tc := range map[string]struct {
		providers []llm.ProviderConfig
		want      error
		text      string
	}{
		"none":      {nil, llm.ErrNoProvider, "no provider"},
		"no model":  {[]llm.ProviderConfig{{BaseURL: "http://x/v1/"}}, llm.ErrConfig, "model: required"},
		"bad url":   {[]llm.ProviderConfig{{BaseURL: "localhost:11434", Model: "m"}}, llm.ErrConfig, "base_url"},
		"ftp url":   {[]llm.ProviderConfig{{BaseURL: "ftp://user:pw@h/", Model: "m"}}, llm.ErrConfig, "ftp://user:xxxxx@h/"},
		"duplicate": {[]llm.ProviderConfig{good, good}, llm.ErrConfig, "must be unique"},
	} {
		_, err := llm.NewChain(llm.Config{Providers: tc.providers}, nil)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: err = %v, want %v mentioning %q", name, err, tc.want, tc.text)
		}
	}
	c, err := llm.NewChain(llm.Config{Providers: []llm.ProviderConfig{{BaseURL: "http://localhost:11434/v1/", Model: "llama3.1"}}}, nil)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	if got := c.Providers(); len(got) != 1 || got[0] != "localhost:11434/llama3.1" {
		t.Fatalf("default name = %q, want host/model", got)
	}
}
