package actors

import (
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
	"go.uber.org/zap"
)

// scanOutcome is turnOutcome as it was before the indexes: a scan of the
// whole log, the last answer or failure of turn n winning.
func scanOutcome(t *testing.T, st *caseStore, id string, n int) (status, text string) {
	t.Helper()
	err := st.events(id, func(ev *casepb.Event) error {
		if m := ev.GetMessageAdded(); m != nil && m.GetRole() == "assistant" && int(m.GetTurnNumber()) == n {
			status, text = TurnCompleted, m.GetContent()
		}
		if f := ev.GetTurnFailed(); f != nil && int(f.GetTurnNumber()) == n {
			status, text = TurnFailed, f.GetReason()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return status, text
}

// scanAck is findAck as it was before the indexes.
func scanAck(t *testing.T, st *caseStore, id, clientMsgID string) (seq uint64, turn int) {
	t.Helper()
	err := st.events(id, func(ev *casepb.Event) error {
		if m := ev.GetMessageAdded(); m != nil && m.GetRole() == "user" && m.GetClientMsgId() == clientMsgID {
			seq, turn = ev.GetSeq(), int(m.GetTurnNumber())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq, turn
}

func historyText(ms []*casepb.MessageAdded) string {
	out := ""
	for _, m := range ms {
		out += fmt.Sprintf("%d:%s:%s|", m.GetTurnNumber(), m.GetRole(), m.GetContent())
	}
	return out
}

// The message, turn and ack indexes give what a scan of the log gives, for
// a case with tool events, a failed turn and its retry; a case written
// before the indexes is read by scanning until its next load indexes it.
func TestIndexesMatchTheLog(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.Enqueue(
		llmtest.Reply{Content: "First answer."},
		llmtest.Reply{Status: 500},
		llmtest.Reply{Content: "Second try works."},
		llmtest.Reply{Content: "Noting it. ", ToolCalls: []llmtest.ToolCallReply{
			{ID: "t1", Name: "update_milestones", Arguments: `{"completed":["symptom_verified"],"note":"502s"}`}}},
		llmtest.Reply{Content: "Recorded."},
		llmtest.Reply{Content: "Last answer."},
	)
	dir := t.TempDir()
	st := openTestStore(t, dir)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	chain, err := llm.NewChain(llm.Config{Providers: []llm.ProviderConfig{{Name: "fake", BaseURL: fake.URL(), Model: "m"}},
		AttemptTimeout: 5 * time.Second, MaxRetries: -1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	start := func(st *persistence.Store) *testSys {
		ks, _ := st.Keyspace(persistence.SpaceCase)
		audit, _ := st.Keyspace(persistence.SpaceAudit)
		c, err := NewCases(Config{}, Deps{Keyspace: ks, Audit: audit, NodeSecret: secret, LLM: chain})
		if err != nil {
			t.Fatal(err)
		}
		sys := &testSys{cases: c, store: st, dir: dir}
		t.Cleanup(sys.stop)
		return sys
	}
	sys := start(st)
	ctx := context.Background()
	id := investigatingCase(t, sys)
	ids := []string{"c1", "c2", "c2", "c3", "c4"} // c2 fails, then is retried
	acks := map[string]Ack{}
	for _, cm := range ids {
		ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: id, ClientMsgID: cm, Text: "message " + cm})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		acks[cm] = ack
	}
	store := sys.cases.d.store
	last := acks["c4"].Turn

	type snapshot struct {
		pages    [][]Message
		totals   []int
		history  []string
		outcomes []string
	}
	// The same reads, through the indexes (indexed) or by scanning the
	// log (scanned); both read store and sys as they are when called.
	type reads struct {
		messages func(limit, offset int) ([]Message, int, error)
		recent   func(before, max int) ([]*casepb.MessageAdded, error)
		outcome  func(n int) (status, text string)
	}
	collect := func(r reads) snapshot {
		t.Helper()
		var s snapshot
		for _, p := range [][2]int{{100, 0}, {3, 0}, {3, 2}, {2, 7}, {5, 100}} {
			msgs, total, err := r.messages(p[0], p[1])
			if err != nil {
				t.Fatal(err)
			}
			s.pages, s.totals = append(s.pages, msgs), append(s.totals, total)
		}
		for before := 1; before <= last+1; before++ {
			for _, max := range []int{1, 3, 400} {
				h, err := r.recent(before, max)
				if err != nil {
					t.Fatal(err)
				}
				s.history = append(s.history, historyText(h))
			}
		}
		for n := 1; n <= last; n++ {
			status, text := r.outcome(n)
			s.outcomes = append(s.outcomes, status+":"+text)
		}
		return s
	}
	indexed := reads{
		messages: func(l, o int) ([]Message, int, error) { return store.messages(id, l, o) },
		recent:   func(b, m int) ([]*casepb.MessageAdded, error) { return store.recentMessages(id, b, m) },
		outcome: func(n int) (string, string) {
			out, err := sys.cases.TurnResult(ctx, "usr_a", id, n)
			if err != nil {
				t.Fatal(err)
			}
			if out.Status == TurnFailed {
				return out.Status, out.Reason
			}
			return out.Status, out.AgentResponse
		},
	}
	scanned := reads{
		messages: func(l, o int) ([]Message, int, error) { return store.scanMessages(id, l, o) },
		recent:   func(b, m int) ([]*casepb.MessageAdded, error) { return store.scanRecentMessages(id, b, m) },
		outcome:  func(n int) (string, string) { return scanOutcome(t, store, id, n) },
	}
	read := func() snapshot { return collect(indexed) }

	want := collect(scanned)
	if want.totals[0] != 2*len(ids)-1 { // the failed turn has no answer
		t.Fatalf("%d messages in the log, want %d", want.totals[0], 2*len(ids)-1)
	}
	if got := read(); !reflect.DeepEqual(got, want) {
		t.Fatalf("indexed reads differ from the log:\n got %+v\nwant %+v", got, want)
	}
	for _, cm := range []string{"c1", "c2", "c3", "c4"} {
		seq, turn := scanAck(t, store, id, cm)
		ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: id, ClientMsgID: cm, Text: "again"})
		if err != nil || !ack.Duplicate || ack.Seq != seq || ack.Turn != turn {
			t.Fatalf("repeat of %s: %+v %v, want the ack of seq %d turn %d", cm, ack, err, seq, turn)
		}
	}

	// A case from before the indexes: drop them and restart.
	b := store.ks.NewBatch()
	for _, p := range []string{"m/", "t/", "k/"} {
		_ = b.DeletePrefix(caseKey(id, p))
	}
	_ = b.Delete(indexedKey(id))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	sys.stop()
	st = openTestStore(t, dir)
	sys = start(st)
	store = sys.cases.d.store
	if ok, _ := store.indexed(id); ok {
		t.Fatal("the index marker survived its deletion")
	}
	// REST pages read the store without loading the case: they scan until
	// the case's next load indexes it.
	for i, p := range [][2]int{{100, 0}, {3, 0}, {3, 2}, {2, 7}, {5, 100}} {
		msgs, total, err := store.messages(id, p[0], p[1])
		if err != nil || total != want.totals[i] || !reflect.DeepEqual(msgs, want.pages[i]) {
			t.Fatalf("page %v of an unindexed case: %+v (%d) %v, want %+v (%d)", p, msgs, total, err, want.pages[i], want.totals[i])
		}
	}
	seq, turn := scanAck(t, store, id, "c2")
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: id, ClientMsgID: "c2", Text: "again"})
	if err != nil || !ack.Duplicate || ack.Seq != seq || ack.Turn != turn {
		t.Fatalf("repeat of c2 after the restart: %+v %v, want seq %d turn %d", ack, err, seq, turn)
	}
	if ok, _ := store.indexed(id); !ok {
		t.Fatal("loading the case did not index it")
	}
	if got := read(); !reflect.DeepEqual(got, want) {
		t.Fatalf("reads after indexing at load differ from the log:\n got %+v\nwant %+v", got, want)
	}
}
