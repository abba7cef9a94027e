package llm_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// secretKey must never appear in logs or errors.
const secretKey = "sk-test-5ecret-do-not-log"

// fake starts a fake LLM server closed at the end of the test.
func fake(t *testing.T) *llmtest.Server {
	t.Helper()
	s := llmtest.New()
	t.Cleanup(s.Close)
	return s
}

// testConfig has short timeouts, no retries and a private HTTP client whose
// idle connections are closed at the end of the test (for goleak).
func testConfig(t *testing.T, providers ...llm.ProviderConfig) llm.Config {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return llm.Config{
		Providers:      providers,
		AttemptTimeout: 3 * time.Second,
		TurnTimeout:    20 * time.Second,
		MaxRetries:     -1,
		HTTPClient:     &http.Client{Transport: tr},
	}
}

func providerFor(name string, s *llmtest.Server) llm.ProviderConfig {
	return llm.ProviderConfig{Name: name, BaseURL: s.URL(), APIKey: secretKey, Model: "model-" + name}
}

func newOpenAI(t *testing.T, p llm.ProviderConfig, cfg llm.Config) *llm.OpenAI {
	t.Helper()
	o, err := llm.NewOpenAI(p, cfg)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return o
}

func userRequest(text string) llm.Request {
	return llm.Request{Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "You are a troubleshooting assistant."},
		{Role: llm.RoleUser, Content: text},
	}}
}

// deltas collects onDelta fragments; safe to read after Stream returned.
type deltas struct {
	mu  sync.Mutex
	got []string
}

func (d *deltas) add(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, s)
}

func (d *deltas) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string{}, d.got...)
}

func (d *deltas) joined() string { return strings.Join(d.list(), "") }

// providerError asserts err is (or wraps) a *ProviderError and returns it.
func providerError(t *testing.T, err error) *llm.ProviderError {
	t.Helper()
	var pe *llm.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *llm.ProviderError", err, err)
	}
	return pe
}

// waitFor polls cond until it holds or the deadline passes.
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

// result is the outcome of a Stream call run in the background.
type result struct {
	resp llm.Response
	err  error
}

func streamAsync(ctx context.Context, c llm.Client, req llm.Request, d *deltas) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := c.Stream(ctx, req, d.add)
		ch <- result{resp, err}
	}()
	return ch
}

// await fails the test if the call does not return within a generous bound
// (the point is "returns at all, well before the server would answer").
func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Stream did not return after cancellation")
		return result{}
	}
}
