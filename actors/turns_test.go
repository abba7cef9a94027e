package actors

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
	"go.uber.org/zap"
)

// startTurnCases runs Cases against real Pebble and the fake LLM through
// the real openai-go client (nil fake: no LLM configured).
func startTurnCases(t *testing.T, fake *llmtest.Server, cfg Config, providers ...llm.ProviderConfig) *testSys {
	t.Helper()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	ks, _ := st.Keyspace(persistence.SpaceCase)
	audit, _ := st.Keyspace(persistence.SpaceAudit)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	deps := Deps{Keyspace: ks, Audit: audit, NodeSecret: secret}
	if fake != nil {
		if len(providers) == 0 {
			providers = []llm.ProviderConfig{{Name: "fake", BaseURL: fake.URL(), Model: "fake-model"}}
		}
		chain, err := llm.NewChain(llm.Config{Providers: providers, AttemptTimeout: 5 * time.Second, MaxRetries: -1}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		deps.LLM = chain
	}
	c, err := NewCases(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	sys := &testSys{cases: c, store: st, dir: dir}
	t.Cleanup(sys.stop)
	return sys
}

// investigatingCase creates a case of usr_a and moves it to investigating,
// the status in which the agent offers its milestone and hypothesis tools.
func investigatingCase(t *testing.T, sys *testSys) string {
	t.Helper()
	ctx := context.Background()
	r, err := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.cases.ChangeStatus(ctx, "usr_a", r.CaseID, StatusInvestigating, "go", ""); err != nil {
		t.Fatal(err)
	}
	return r.CaseID
}

// collector is a Subscriber that records every frame.
type collector struct {
	mu     sync.Mutex
	frames []Frame
	refuse bool
}

func (c *collector) Deliver(f Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse {
		return false
	}
	c.frames = append(c.frames, f)
	return true
}

func (c *collector) snapshot() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

func (c *collector) waitFor(t *testing.T, what string, pred func(Frame) bool) Frame {
	t.Helper()
	var got Frame
	checkFor(t, 10*time.Second, func() error {
		for _, f := range c.snapshot() {
			if pred(f) {
				got = f
				return nil
			}
		}
		return fmt.Errorf("no %s frame yet", what)
	})
	return got
}

func messageData(t *testing.T, f Frame) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func isAssistant(turn int) func(Frame) bool {
	return func(f Frame) bool {
		if f.Type != "event" || f.Kind != "message" {
			return false
		}
		var d struct {
			Role string `json:"role"`
			Turn int    `json:"turn_number"`
		}
		_ = json.Unmarshal(f.Data, &d)
		return d.Role == "assistant" && d.Turn == turn
	}
}

func TestTurnStreamsAndPersists(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: "The 502s come from the upstream pool being exhausted.", ChunkChars: 5})
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	sub := &collector{}
	if _, err := sys.cases.Subscribe(ctx, "usr_a", r.CaseID, 0, sub); err != nil {
		t.Fatal(err)
	}
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "c-1", Text: "Our API returns 502 since the deploy at 14:00"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Turn != 1 || ack.Seq < 2 || ack.Duplicate {
		t.Fatalf("ack %+v", ack)
	}
	final := sub.waitFor(t, "assistant message", isAssistant(1))
	sub.waitFor(t, "turn_done", func(f Frame) bool { return f.Type == "turn_done" && f.Turn == 1 })
	var deltas strings.Builder
	var seqs []uint64
	sawStarted := false
	for _, f := range sub.snapshot() {
		switch f.Type {
		case "delta":
			if !sawStarted {
				t.Fatal("delta before turn_started")
			}
			deltas.WriteString(f.Text)
		case "turn_started":
			sawStarted = true
		case "event":
			seqs = append(seqs, f.Seq)
		}
	}
	content := messageData(t, final)["content"].(string)
	if deltas.String() != content || content == "" {
		t.Fatalf("deltas %q != final %q", deltas.String(), content)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("event seqs have a gap: %v", seqs)
		}
	}
	msgs, total, _ := sys.cases.Messages(ctx, "usr_a", r.CaseID, 100, 0)
	if total != 2 || msgs[0].Role != "user" || msgs[1].Role != "assistant" || msgs[0].TurnNumber != 1 || msgs[1].TurnNumber != 1 {
		t.Fatalf("messages %+v", msgs)
	}
	row, _ := sys.cases.Get(ctx, "usr_a", r.CaseID)
	if row.Title != "Our API returns 502 since the deploy at 14:00" || row.CurrentTurn != 1 {
		t.Fatalf("auto title / turn: %+v", row)
	}
	out, err := sys.cases.TurnResult(ctx, "usr_a", r.CaseID, 1)
	if err != nil || out.Status != TurnCompleted || out.AgentResponse != content {
		t.Fatalf("outcome %+v %v", out, err)
	}
}

func TestDuplicateClientMsgIDGetsSameAck(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	req := TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "same", Text: "hello"}
	a1, err := sys.cases.SubmitTurn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.cases.AwaitTurn(ctx, "usr_a", a1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	a2, err := sys.cases.SubmitTurn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Seq != a1.Seq || a2.Turn != a1.Turn || !a2.Duplicate {
		t.Fatalf("repeat ack %+v vs %+v", a2, a1)
	}
	if n := fake.RequestCount(); n != 1 {
		t.Fatalf("LLM called %d times, want 1", n)
	}
	if _, total, _ := sys.cases.Messages(ctx, "usr_a", r.CaseID, 100, 0); total != 2 {
		t.Fatalf("messages = %d", total)
	}
}

func TestToolCallsMoveMilestonesAndInvalidArgsAreRepaired(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.Enqueue(
		// An invalid milestone name: must not reach the case, must be repaired.
		llmtest.Reply{ToolCalls: []llmtest.ToolCallReply{{ID: "t1", Name: "update_milestones", Arguments: `{"completed":["rootcause"],"note":"x"}`}}},
		llmtest.Reply{ToolCalls: []llmtest.ToolCallReply{
			{ID: "t2", Name: "update_milestones", Arguments: `{"completed":["symptom_verified","timeline_established"],"note":"502s since 14:00"}`},
			{ID: "t3", Name: "record_hypothesis", Arguments: `{"statement":"the deploy changed the upstream pool size","category":"config","confidence":"probable"}`},
		}},
		llmtest.Reply{Content: "Recorded. Please share the nginx error log from 14:00-14:30."},
	)
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	id := investigatingCase(t, sys)
	sub := &collector{}
	_, _ = sys.cases.Subscribe(ctx, "usr_a", id, 0, sub)
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: id, ClientMsgID: "c1", Text: "502s since the deploy"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if err != nil || out.Status != TurnCompleted {
		t.Fatalf("outcome %+v %v", out, err)
	}
	v, _ := sys.cases.View(ctx, "usr_a", id)
	if strings.Join(v.Milestones, ",") != "symptom_verified,timeline_established" {
		t.Fatalf("milestones %v", v.Milestones)
	}
	if len(v.Hypotheses) != 1 || v.Hypotheses[0].Category != "config" || v.Hypotheses[0].Status != "active" {
		t.Fatalf("hypotheses %+v", v.Hypotheses)
	}
	if v.Tokens.Prompt == 0 || v.Tokens.Completion == 0 {
		t.Fatalf("token usage not recorded per case: %+v", v.Tokens)
	}
	sub.waitFor(t, "milestones event", func(f Frame) bool { return f.Type == "event" && f.Kind == "milestones" })
	sub.waitFor(t, "hypothesis event", func(f Frame) bool { return f.Type == "event" && f.Kind == "hypothesis" })
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("LLM requests = %d, want 3 (invalid call, repaired call, answer)", len(reqs))
	}
	repair := false
	for _, m := range reqs[1].Messages {
		if m.Role == "tool" && strings.Contains(m.Content, "rootcause") {
			repair = true
		}
	}
	if !repair {
		t.Fatal("the second request does not carry the repair message about the invalid argument")
	}
	if len(out.MilestonesCompleted) != 2 || !out.ProgressMade {
		t.Fatalf("turn outcome milestones %v progress %v", out.MilestonesCompleted, out.ProgressMade)
	}
}

func TestSecretsNeverReachTheLLM(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	const awsKey, dbPass = "AKIAIOSFODNN7EXAMPLE", "Xq9-s3cr3t-Pa55"
	fake.Forbid(awsKey, dbPass)
	// Echo the user's message back, so pseudonyms come back in the answer.
	fake.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Content: "You sent: " + req.LastUser(), ChunkChars: 3}
	})
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	text := "deploy uses AWS_ACCESS_KEY_ID=" + awsKey + " and postgres://app:" + dbPass + "@db.internal:5432/orders"
	out := turnWithoutLeaks(t, sys, fake, r.CaseID, text)
	if !strings.Contains(out.AgentResponse, awsKey) || !strings.Contains(out.AgentResponse, dbPass) {
		t.Fatalf("the user must see the secrets restored: %q", out.AgentResponse)
	}
	if !strings.Contains(out.AgentResponse, "db.internal:5432") {
		t.Fatal("diagnostic parts of the DSN must survive")
	}
	recs, err := sys.cases.Egress(ctx, r.CaseID)
	if err != nil || len(recs) != 1 || recs[0].Phase != "sent" || recs[0].Provider != "fake" || recs[0].Call != 1 {
		t.Fatalf("want one egress record for the one LLM call: %+v %v", recs, err)
	}
	var sent strings.Builder
	for _, rec := range recs {
		for _, m := range rec.Messages {
			sent.WriteString(m.Content + "\n")
		}
	}
	if strings.Contains(sent.String(), awsKey) || strings.Contains(sent.String(), dbPass) {
		t.Fatal("the egress audit holds a raw secret")
	}
	if !strings.Contains(sent.String(), "<secret-") || recs[0].SecretsRedacted < 2 {
		t.Fatalf("the egress audit must show the pseudonymised text: %s", sent.String())
	}
	row, _ := sys.cases.Get(ctx, "usr_a", r.CaseID)
	if strings.Contains(row.Title, awsKey) || strings.Contains(row.Title, dbPass) {
		t.Fatalf("the auto title leaks a secret: %q", row.Title)
	}
}

// TestPastedConfigSecretsNeverReachTheLLM pastes the kinds of files and
// command lines an engineer shares while troubleshooting, one secret in
// each shape the detector knows beyond key=value pairs, and checks that none
// reaches the model while the user gets every one back.
func TestPastedConfigSecretsNeverReachTheLLM(t *testing.T) {
	secrets := []string{
		"n3xusDepl0y!",                         // Maven settings.xml <password>
		"8f14e45fceea167a5a36dedd4bea2543",     // a session cookie
		"n3trcP4ss",                            // a .netrc line
		"Sup3rS3cret!",                         // a password in a sentence
		"glpat-Ab3dEfGh1jKlMn0pQr5t",           // a GitLab token
		"Pa55w0rdDock3r",                       // docker login -p
		"PgP4ssw0rd",                           // a .pgpass line
		"hvs.CAESIJ3b4tYQxXr8k2Lw9mN1pQ7sT0uV", // a Vault token
		"Zx9sT4vQ8pL2mN7k",                     // redis.conf requirepass, in the line the title comes from
	}
	text := "redis latency spikes; requirepass " + secrets[8] + "\n" +
		"settings.xml has <server><id>nexus</id><password>" + secrets[0] + "</password></server>\n" +
		"Cookie: sessionid=" + secrets[1] + "; theme=dark\n" +
		"machine repo.example.com login deploy password " + secrets[2] + "\n" +
		"the db password is " + secrets[3] + " but login is refused\n" +
		"CI uses " + secrets[4] + " and runs docker login -u ci -p " + secrets[5] + " registry.example.com\n" +
		"db.example.com:5432:orders:app:" + secrets[6] + "\n" +
		"vault says 403 for " + secrets[7] + "\n"
	fake := llmtest.New()
	defer fake.Close()
	fake.Forbid(secrets...)
	fake.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Content: "You sent: " + req.LastUser(), ChunkChars: 5}
	})
	sys := startTurnCases(t, fake, Config{})
	r, _ := sys.cases.Create(context.Background(), CreateCase{Owner: "usr_a"})
	out := turnWithoutLeaks(t, sys, fake, r.CaseID, text)
	for _, s := range secrets {
		if !strings.Contains(out.AgentResponse, s) {
			t.Errorf("the user must see %q restored: %q", s, out.AgentResponse)
		}
	}
	for _, keep := range []string{"repo.example.com", "db.example.com:5432:orders:app:", "theme=dark", "registry.example.com"} {
		if !strings.Contains(out.AgentResponse, keep) {
			t.Errorf("diagnostic context %q must survive: %q", keep, out.AgentResponse)
		}
	}
	row, _ := sys.cases.Get(context.Background(), "usr_a", r.CaseID)
	if !strings.Contains(row.Title, "redis latency") || strings.Contains(row.Title, secrets[8]) {
		t.Errorf("the auto title must come from the first line without its secret: %q", row.Title)
	}
}

// turnWithoutLeaks runs one turn of usr_a on caseID and fails the test if
// the fake LLM saw a forbidden secret or was never called.
func turnWithoutLeaks(t *testing.T, sys *testSys, fake *llmtest.Server, caseID, text string) TurnOutcome {
	t.Helper()
	ctx := context.Background()
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: caseID, ClientMsgID: "leak-check", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if err != nil || out.Status != TurnCompleted {
		t.Fatalf("outcome %+v %v", out, err)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Fatalf("a secret reached the LLM: %v", v)
	}
	if fake.RequestCount() == 0 {
		t.Fatal("the LLM was never called")
	}
	return out
}

func TestProviderFailuresBecomeReadableTurnFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply llmtest.Reply
		want  string
	}{
		{"429", llmtest.Reply{Status: 429, RetryAfter: 1}, "429"},
		{"500", llmtest.Reply{Status: 500}, "500"},
		{"disconnect", llmtest.Reply{DisconnectAfterChunks: -1}, "interrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := llmtest.New()
			defer fake.Close()
			fake.SetDefault(tc.reply)
			sys := startTurnCases(t, fake, Config{})
			ctx := context.Background()
			r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
			ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "f1", Text: "help"})
			if err != nil {
				t.Fatal(err)
			}
			out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 15*time.Second)
			if err != nil || out.Status != TurnFailed {
				t.Fatalf("outcome %+v %v", out, err)
			}
			if !strings.Contains(strings.ToLower(out.Reason), tc.want) {
				t.Fatalf("reason %q should mention %q", out.Reason, tc.want)
			}
			// The user message is kept and a retry with the same id runs again.
			fake.SetDefault(llmtest.Reply{Content: "works now"})
			ack2, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "f1", Text: "help"})
			if err != nil || ack2.Duplicate || ack2.Turn != 2 {
				t.Fatalf("retry ack %+v %v", ack2, err)
			}
			out2, _ := sys.cases.AwaitTurn(ctx, "usr_a", ack2, 15*time.Second)
			if out2.Status != TurnCompleted || !strings.Contains(out2.AgentResponse, "works now") {
				t.Fatalf("retry outcome %+v", out2)
			}
		})
	}
}

func TestFallbackProviderIsUsed(t *testing.T) {
	bad, good := llmtest.New(), llmtest.New()
	defer bad.Close()
	defer good.Close()
	bad.SetDefault(llmtest.Reply{Status: 500})
	good.SetDefault(llmtest.Reply{Content: "answer from the fallback"})
	sys := startTurnCases(t, bad, Config{},
		llm.ProviderConfig{Name: "primary", BaseURL: bad.URL(), Model: "m"},
		llm.ProviderConfig{Name: "backup", BaseURL: good.URL(), Model: "m"})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	ack, _ := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "x", Text: "hi"})
	out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 15*time.Second)
	if err != nil || out.Status != TurnCompleted || !strings.Contains(out.AgentResponse, "fallback") {
		t.Fatalf("outcome %+v %v", out, err)
	}
	if bad.RequestCount() == 0 || good.RequestCount() == 0 {
		t.Fatalf("primary tried %d, backup %d", bad.RequestCount(), good.RequestCount())
	}
	recs, _ := sys.cases.Egress(ctx, r.CaseID)
	if len(recs) == 0 || recs[len(recs)-1].Provider != "backup" {
		t.Fatalf("egress should name the provider that answered: %+v", recs)
	}
}

func TestCancelStopsTheTurn(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetDefault(llmtest.Reply{Content: "slow", TTFT: 30 * time.Second})
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	ack, _ := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "c", Text: "hi"})
	checkFor(t, 5*time.Second, func() error {
		if fake.Active() == 0 {
			return errors.New("LLM request not started")
		}
		return nil
	})
	if err := sys.cases.CancelTurn(ctx, "usr_a", r.CaseID); err != nil {
		t.Fatal(err)
	}
	out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if err != nil || out.Status != TurnFailed || out.Reason != "cancelled" {
		t.Fatalf("outcome %+v %v", out, err)
	}
}

func TestTurnsQueueInOrder(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	fake.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		return llmtest.Reply{Content: "re: " + req.LastUser(), TTFT: 20 * time.Millisecond}
	})
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	var acks []Ack
	for i := 0; i < 4; i++ {
		a, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: fmt.Sprint(i), Text: fmt.Sprintf("q%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, a)
	}
	for i, a := range acks {
		out, err := sys.cases.AwaitTurn(ctx, "usr_a", a, 15*time.Second)
		if err != nil || out.Status != TurnCompleted || !strings.Contains(out.AgentResponse, fmt.Sprintf("q%d", i)) {
			t.Fatalf("turn %d: %+v %v", i+1, out, err)
		}
	}
	if fake.RequestCount() != 4 {
		t.Fatalf("requests = %d", fake.RequestCount())
	}
}

func TestNoLLMGivesLabelledRetrievalOnlyAnswer(t *testing.T) {
	sys := startTurnCases(t, nil, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "n", Text: "disk full on db01"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if err != nil || out.Status != TurnCompleted || !out.RetrievalOnly {
		t.Fatalf("outcome %+v %v", out, err)
	}
	if !strings.Contains(strings.ToLower(out.AgentResponse), "no language model is configured") {
		t.Fatalf("answer must say it is retrieval-only: %q", out.AgentResponse)
	}
}

func TestStatusTransitionIntent(t *testing.T) {
	sys := startTurnCases(t, nil, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	ack, err := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "i",
		Text: "Close this case. I don't need further investigation.", IntentType: "status_transition",
		Intent: map[string]any{"type": "status_transition", "from_state": "inquiry", "to_state": "closed", "user_confirmed": true}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if out.CaseState != StatusClosed {
		t.Fatalf("case_state %q", out.CaseState)
	}
	row, _ := sys.cases.Get(ctx, "usr_a", r.CaseID)
	if row.State != StatusClosed || row.ClosureReason == nil || *row.ClosureReason != "inquiry_only" || row.ClosedAt == nil {
		t.Fatalf("row %+v", row)
	}
	// An impossible transition is refused before anything is stored.
	_, err = sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "j", Text: "reopen",
		IntentType: "status_transition", Intent: map[string]any{"to_state": "investigating", "user_confirmed": true}})
	if !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("got %v", err)
	}
	if _, total, _ := sys.cases.Messages(ctx, "usr_a", r.CaseID, 100, 0); total != 2 {
		t.Fatalf("a refused turn stored a message: total %d", total)
	}
}

func TestOpenTurnIsFailedOnRehydration(t *testing.T) {
	dir := t.TempDir()
	sys := startCases(t, dir, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	sys.stop()
	// What a kill -9 in the middle of a turn leaves: the user message of
	// turn 1 is durable, its answer never came.
	st := openTestStore(t, dir)
	ks, _ := st.Keyspace(persistence.SpaceCase)
	store := &caseStore{ks: ks, snapEvery: 64}
	s, _ := store.load(r.CaseID)
	ev := s.newEvent(time.Now(), "usr_a")
	ev.Kind = &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{MessageId: "m1", Role: "user", Content: "hi", TurnNumber: 1, ClientMsgId: "k"}}
	_ = s.apply(ev)
	if err := store.appendEvents(s, []*casepb.Event{ev}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	sys2 := startCases(t, dir, Config{})
	out, err := sys2.cases.TurnResult(ctx, "usr_a", r.CaseID, 1)
	if err != nil || out.Status != TurnFailed || !strings.Contains(out.Reason, "restarted") {
		t.Fatalf("outcome %+v %v", out, err)
	}
	msgs, _, _ := sys2.cases.Messages(ctx, "usr_a", r.CaseID, 10, 0)
	if len(msgs) != 1 || msgs[0].Content != "hi" {
		t.Fatalf("the user message must survive: %+v", msgs)
	}
}

func TestSlowSubscriberIsDroppedAndTheCaseGoesOn(t *testing.T) {
	fake := llmtest.New()
	defer fake.Close()
	sys := startTurnCases(t, fake, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	slow, fast := &collector{}, &collector{}
	_, _ = sys.cases.Subscribe(ctx, "usr_a", r.CaseID, 0, slow)
	_, _ = sys.cases.Subscribe(ctx, "usr_a", r.CaseID, 0, fast)
	slow.mu.Lock()
	slow.refuse = true
	slow.mu.Unlock()
	ack, _ := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_a", CaseID: r.CaseID, ClientMsgID: "z", Text: "hi"})
	out, err := sys.cases.AwaitTurn(ctx, "usr_a", ack, 10*time.Second)
	if err != nil || out.Status != TurnCompleted {
		t.Fatalf("%+v %v", out, err)
	}
	fast.waitFor(t, "answer", isAssistant(1))
	if counterValue(sys.cases.d.metrics.slowSubscribers) < 1 {
		t.Fatal("the slow subscriber was not dropped")
	}
}

func TestOtherUserCannotUseTurnAPI(t *testing.T) {
	sys := startTurnCases(t, nil, Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	_, e1 := sys.cases.SubmitTurn(ctx, TurnRequest{Owner: "usr_b", CaseID: r.CaseID, ClientMsgID: "x", Text: "mine"})
	_, e2 := sys.cases.Subscribe(ctx, "usr_b", r.CaseID, 0, &collector{})
	e3 := sys.cases.CancelTurn(ctx, "usr_b", r.CaseID)
	_, e4 := sys.cases.TurnResult(ctx, "usr_b", r.CaseID, 1)
	for i, err := range []error{e1, e2, e3, e4} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("call %d: %v", i, err)
		}
	}
}
