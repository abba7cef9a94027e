package actors

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/persistence"
	"go.uber.org/zap"
)

// BenchmarkTurnStart runs turns one after another against the fake LLM (no
// time to first token), a fresh case every turnsPerCase turns, and reports
// the p50/p99 time from SubmitTurn to its Ack (durable) and from SubmitTurn
// to the LLM request having reached the fake: the ack and turn-start paths
// without contention.
func BenchmarkTurnStart(b *testing.B) {
	const turnsPerCase = 20
	fake := llmtest.New()
	defer fake.Close()
	arrived := make(chan time.Time, 1)
	fake.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		select {
		case arrived <- req.ReceivedAt:
		default:
		}
		return llmtest.Reply{Content: "Check the disk usage of the data volume first."}
	})
	fake.SetRequestLimit(1)

	st, err := persistence.Open(b.TempDir(), &persistence.Options{NoBlobs: true})
	if err != nil {
		b.Fatal(err)
	}
	ks, _ := st.Keyspace(persistence.SpaceCase)
	audit, _ := st.Keyspace(persistence.SpaceAudit)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	chain, err := llm.NewChain(llm.Config{Providers: []llm.ProviderConfig{{Name: "fake", BaseURL: fake.URL(), Model: "m"}},
		MaxRetries: -1}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCases(Config{}, Deps{Keyspace: ks, Audit: audit, NodeSecret: secret, LLM: chain})
	if err != nil {
		b.Fatal(err)
	}
	sys := &testSys{cases: c, store: st}
	defer sys.stop()
	ctx := context.Background()
	var row CaseRow
	var acks, starts []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%turnsPerCase == 0 {
			// A fresh case every few turns: the prompt stays the size of a
			// short conversation, as in the load harness.
			if row, err = c.Create(ctx, CreateCase{Owner: "usr_a", Title: "disk full"}); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, "usr_a", row.CaseID, 0, &collector{}); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		ack, err := c.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: row.CaseID, ClientMsgID: fmt.Sprint("m", i),
			Text: "the data volume is full again, what should I check?"})
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, time.Since(t0))
		select {
		case at := <-arrived:
			starts = append(starts, at.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("no LLM request")
		}
		out, err := c.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
		if err != nil || out.Status != TurnCompleted {
			b.Fatalf("turn %d: %+v %v", ack.Turn, out, err)
		}
	}
	b.StopTimer()
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), name+"-p99-µs")
	}
	report("ack", acks)
	report("llm-request", starts)
}
