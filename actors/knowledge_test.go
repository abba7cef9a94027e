package actors

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/persistence"
	"go.uber.org/zap"
)

// kbStub is the knowledge base at its interface boundary (the real one is
// exercised end to end in package gateway).
type kbStub struct {
	mu     sync.Mutex
	owners []string
}

func (k *kbStub) Search(_ context.Context, owner, caseID, query string, limit int) ([]agent.Source, error) {
	k.mu.Lock()
	k.owners = append(k.owners, owner+"/"+caseID)
	k.mu.Unlock()
	return []agent.Source{{DocumentID: "doc_1", Title: "Nginx 502 runbook", URL: "https://kb.example/nginx-502", Snippet: "upstream timed out: raise proxy_read_timeout"}}, nil
}

func TestKnowledgeHitsGroundTheAnswerAndAreCited(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: "Per the runbook, raise proxy_read_timeout."})
	st := openTestStore(t, t.TempDir())
	ks, _ := st.Keyspace(persistence.SpaceCase)
	audit, _ := st.Keyspace(persistence.SpaceAudit)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	chain, _ := llm.NewChain(llm.Config{Providers: []llm.ProviderConfig{{Name: "fake", BaseURL: fake.URL(), Model: "m"}}, MaxRetries: -1}, zap.NewNop())
	kb := &kbStub{}
	c, err := NewCases(Config{}, Deps{Keyspace: ks, Audit: audit, NodeSecret: secret, LLM: chain, Knowledge: kb})
	if err != nil {
		t.Fatal(err)
	}
	sys := &testSys{cases: c, store: st}
	t.Cleanup(sys.stop)
	ctx := context.Background()
	r, _ := c.Create(ctx, CreateCase{Owner: "usr_a"})
	ack, _ := c.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "k", Text: "nginx says upstream timed out"})
	out, err := c.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if err != nil || out.Status != TurnCompleted {
		t.Fatalf("%+v %v", out, err)
	}
	if !strings.Contains(out.AgentResponse, "**Sources**") || !strings.Contains(out.AgentResponse, "[Nginx 502 runbook](https://kb.example/nginx-502)") {
		t.Fatalf("the answer must cite the knowledge hit as a markdown list:\n%s", out.AgentResponse)
	}
	sent := false
	for _, req := range fake.Requests() {
		for _, m := range req.Messages {
			sent = sent || strings.Contains(m.Content, "raise proxy_read_timeout")
		}
	}
	if !sent {
		t.Fatal("the knowledge snippet never reached the LLM's context")
	}
	kb.mu.Lock()
	defer kb.mu.Unlock()
	if len(kb.owners) == 0 || kb.owners[0] != "usr_a/"+r.CaseID {
		t.Fatalf("searches must run as the case owner for this case: %v", kb.owners)
	}
}
