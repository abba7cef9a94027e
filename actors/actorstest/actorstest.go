// Package actorstest builds the case system for the tests of the packages
// above actors (gateway, gateway/ws): real case actors over a real Pebble
// store, answering through the real LLM client and the fake
// OpenAI-compatible server. Only tests import it; actors' own tests cannot
// (it imports actors) and keep their own setup.
package actorstest

import (
	"context"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/persistence"
)

// Store opens a store in dir, closed when the test ends, and returns it
// with a function that claims a keyspace or fails the test.
func Store(t testing.TB, dir string, opts *persistence.Options) (*persistence.Store, func(name string) *persistence.Keyspace) {
	t.Helper()
	store, err := persistence.Open(dir, opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, func(name string) *persistence.Keyspace {
		t.Helper()
		ks, err := store.Keyspace(name)
		if err != nil {
			t.Fatalf("keyspace %s: %v", name, err)
		}
		return ks
	}
}

// WithLLM sets deps up to answer turns through fake: an llm.Chain with one
// provider and no retries, the egress audit in audit, and a random node
// secret. Call it before Start: the chain's idle connections are closed
// when the test ends, after the cases have shut down (for goleak).
func WithLLM(t testing.TB, deps *actors.Deps, fake *llmtest.Server, audit *persistence.Keyspace) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	chain, err := llm.NewChain(llm.Config{
		Providers:  []llm.ProviderConfig{{Name: "fake", BaseURL: fake.URL(), APIKey: "sk-fake", Model: "fake-model"}},
		MaxRetries: -1,
		HTTPClient: &http.Client{Transport: tr},
	}, zap.NewNop())
	if err != nil {
		t.Fatalf("llm.NewChain: %v", err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	deps.LLM, deps.Audit, deps.NodeSecret = chain, audit, secret
}

// Start starts the case system, shut down (within 2 s) when the test ends.
func Start(t testing.TB, cfg actors.Config, deps actors.Deps) *actors.Cases {
	t.Helper()
	cases, err := actors.NewCases(cfg, deps)
	if err != nil {
		t.Fatalf("actors.NewCases: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := cases.Shutdown(ctx); err != nil {
			t.Errorf("actors.Cases.Shutdown: %v", err)
		}
	})
	return cases
}
