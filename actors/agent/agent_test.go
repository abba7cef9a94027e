package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

func TestToolCallsRecordProgress(t *testing.T) {
	client := newScript(true,
		reply("Checking what you sent. ",
			call(toolUpdateMilestones, `{"completed":["symptom_verified","scope_assessed","timeline_established"],"note":"502s seen in the LB log for all regions"}`),
			call(toolRecordHypothesis, `{"statement":"A bad feature flag disables the connection pool","category":"config","confidence":"speculation"}`)),
		reply("", call(toolEvaluateHypothesis, `{"hypothesis_id":"hyp-1","status":"refuted","confidence":"confident","rationale":"The flag was unchanged since March."}`)),
		say("The pool hypothesis h1 stays the best candidate."),
	)
	tools := &recTools{milestones: []string{MilestoneTimelineEstablished}}
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "All regions fail, see the LB log."}, tools)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`update_milestones [symptom_verified scope_assessed timeline_established] "502s seen in the LB log for all regions"`,
		`record_hypothesis "A bad feature flag disables the connection pool" config active speculation`,
		`evaluate_hypothesis hyp-1 refuted confident "The flag was unchanged since March."`,
	}
	if got := tools.log(); !slices.Equal(got, want) {
		t.Fatalf("tool calls:\n got %q\nwant %q", got, want)
	}
	if want := []string{MilestoneSymptomVerified, MilestoneScopeAssessed}; !slices.Equal(out.MilestonesCompleted, want) {
		t.Errorf("MilestonesCompleted = %v, want %v (timeline_established was already done)", out.MilestonesCompleted, want)
	}
	if !out.ProgressMade || out.ToolCalls != 3 || out.RepairRounds != 0 {
		t.Errorf("ProgressMade=%v ToolCalls=%d RepairRounds=%d, want true 3 0", out.ProgressMade, out.ToolCalls, out.RepairRounds)
	}
	if want := "Checking what you sent. \n\nThe pool hypothesis h1 stays the best candidate."; out.Content != want {
		t.Errorf("Content = %q, want %q", out.Content, want)
	}
	if out.Usage.PromptTokens != 300 || out.Usage.CompletionTokens != 30 || out.Provider != "fake" {
		t.Errorf("usage %+v provider %q, want summed over 3 replies", out.Usage, out.Provider)
	}

	reqs := client.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	// The second request carries the assistant's calls and one result per call.
	second := reqs[1]
	var asked *llm.Message
	for i := range second.Messages {
		if len(second.Messages[i].ToolCalls) > 0 {
			asked = &second.Messages[i]
		}
	}
	if asked == nil || len(asked.ToolCalls) != 2 {
		t.Fatalf("second request lacks the assistant tool calls: %+v", second.Messages)
	}
	results := toolMessages(second)
	if len(results) != 2 || results[0].ToolCallID != asked.ToolCalls[0].ID || results[1].ToolCallID != asked.ToolCalls[1].ID {
		t.Fatalf("tool results do not answer the calls: %+v", results)
	}
	if !strings.Contains(results[1].Content, "hyp-1") {
		t.Errorf("record result %q does not give the new id", results[1].Content)
	}
	// The new hypothesis id is offered for evaluation in the next round.
	ev := findTool(second.Tools, toolEvaluateHypothesis)
	if ev == nil {
		t.Fatal("evaluate_hypothesis not offered")
	}
	ids := ev.Parameters["properties"].(map[string]any)["hypothesis_id"].(map[string]any)["enum"].([]string)
	if !slices.Equal(ids, []string{"h1", "hyp-1"}) {
		t.Errorf("hypothesis_id enum = %v", ids)
	}
}

func TestInvalidArgumentsAreRepaired(t *testing.T) {
	cases := []struct {
		name       string
		tool       string
		bad, good  string
		wantRepair string
		wantCall   string
	}{
		{
			name: "bad enum", tool: toolUpdateMilestones,
			bad:        `{"completed":["symptom_verified","rootcause"]}`,
			good:       `{"completed":["symptom_verified","root_cause_identified"]}`,
			wantRepair: `invalid arguments for update_milestones: completed[1] "rootcause" is not one of symptom_verified, scope_assessed, timeline_established, changes_identified, root_cause_identified, solution_proposed, solution_applied, solution_verified; call it again with valid arguments`,
			wantCall:   `update_milestones [symptom_verified root_cause_identified] ""`,
		},
		{
			name: "bad JSON", tool: toolRecordHypothesis,
			bad:        `{"statement":"DNS cache is stale","category":"network",`,
			good:       `{"statement":"DNS cache is stale","category":"network","confidence":"probable"}`,
			wantRepair: "invalid arguments for record_hypothesis: arguments are not valid JSON",
			wantCall:   `record_hypothesis "DNS cache is stale" network active probable`,
		},
		{
			name: "unknown hypothesis id", tool: toolEvaluateHypothesis,
			bad:        `{"hypothesis_id":"h7","status":"validated","confidence":"confident","rationale":"pool metrics"}`,
			good:       `{"hypothesis_id":"h1","status":"validated","confidence":"confident","rationale":"pool metrics"}`,
			wantRepair: `invalid arguments for evaluate_hypothesis: hypothesis_id "h7" is not a known hypothesis (known: h1); call it again`,
			wantCall:   `evaluate_hypothesis h1 validated confident "pool metrics"`,
		},
		{
			name: "wrong type and unknown field", tool: toolSearchEvidence,
			bad:        `{"query":"timeout","limit":"5","regex":true}`,
			good:       `{"query":"timeout","limit":5}`,
			wantRepair: "invalid arguments for search_evidence: limit must be an integer, not a JSON string",
			wantCall:   `search_evidence "timeout" 5`,
		},
		{
			name: "unknown field", tool: toolSearchKnowledge,
			bad:        `{"query":"timeout","top_k":3}`,
			good:       `{"query":"timeout","limit":3}`,
			wantRepair: `invalid arguments for search_knowledge: "top_k" is not an argument of this tool (allowed: query, limit)`,
			wantCall:   `search_knowledge "timeout" 3`,
		},
		{
			name: "too long", tool: toolProposeSolution,
			bad:        jsonArgs(map[string]string{"kind": "rollback", "description": strings.Repeat("x", 2001)}),
			good:       `{"kind":"rollback","description":"Roll back the 14:00 deploy."}`,
			wantRepair: "description is 2001 characters; the maximum is 2000",
			wantCall:   `propose_solution rollback "Roll back the 14:00 deploy."`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := newScript(true,
				reply("", call(tc.tool, tc.bad)),
				reply("", call(tc.tool, tc.good)),
				say("Done."),
			)
			tools := &recTools{}
			out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "go"}, tools)
			if err != nil {
				t.Fatal(err)
			}
			if got := tools.log(); !slices.Equal(got, []string{tc.wantCall}) {
				t.Fatalf("Tools saw %q, want only the repaired call %q", got, tc.wantCall)
			}
			repair := toolMessages(client.requests()[1])
			if len(repair) != 1 || !strings.Contains(repair[0].Content, tc.wantRepair) {
				t.Fatalf("repair message %q does not contain %q", repair, tc.wantRepair)
			}
			if out.RepairRounds != 1 || out.ToolCalls != 2 {
				t.Errorf("RepairRounds=%d ToolCalls=%d, want 1 and 2", out.RepairRounds, out.ToolCalls)
			}
		})
	}
}

func TestRepeatedInvalidCallsWithdrawTool(t *testing.T) {
	bad := `{"completed":["done"]}`
	client := newScript(true,
		reply("", call(toolUpdateMilestones, bad)),
		reply("", call(toolUpdateMilestones, bad)),
		reply("", call(toolUpdateMilestones, `{"completed":["symptom_verified"]}`)),
		say("I could not record the milestone."),
	)
	tools := &recTools{}
	out, err := run(t, New(Config{MaxRepairRounds: 2}, client), Input{Case: investigatingCase(), UserText: "go"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if got := tools.log(); len(got) != 0 {
		t.Fatalf("Tools saw %q after the tool was withdrawn", got)
	}
	reqs := client.requests()
	if findTool(reqs[1].Tools, toolUpdateMilestones) == nil {
		t.Error("update_milestones withdrawn after one invalid call")
	}
	if findTool(reqs[2].Tools, toolUpdateMilestones) != nil {
		t.Errorf("update_milestones still offered after %d invalid calls: %v", 2, toolNames(reqs[2].Tools))
	}
	if msg := toolMessages(reqs[2])[1].Content; !strings.Contains(msg, "withdrawn for the rest of this turn") {
		t.Errorf("second repair message %q does not say the tool is withdrawn", msg)
	}
	if msg := toolMessages(reqs[3])[2].Content; !strings.Contains(msg, "withdrawn") {
		t.Errorf("call of a withdrawn tool answered %q", msg)
	}
	if out.RepairRounds != 3 || len(out.MilestonesCompleted) != 0 || out.ProgressMade {
		t.Errorf("RepairRounds=%d MilestonesCompleted=%v ProgressMade=%v", out.RepairRounds, out.MilestonesCompleted, out.ProgressMade)
	}
}

func TestReadOnlyStatusRejectsMutatingCalls(t *testing.T) {
	c := investigatingCase()
	c.Status = StatusResolved
	client := newScript(true,
		reply("", call(toolUpdateMilestones, `{"completed":["solution_verified"]}`),
			call(toolRequestStatusChange, `{"to":"investigating","reason":"reopen"}`)),
		say("The case is resolved."),
	)
	tools := &recTools{}
	if _, err := run(t, New(Config{}, client), Input{Case: c, UserText: "mark it verified"}, tools); err != nil {
		t.Fatal(err)
	}
	if got := tools.log(); len(got) != 0 {
		t.Fatalf("Tools saw %q on a resolved case", got)
	}
	for _, m := range toolMessages(client.requests()[1]) {
		if !strings.Contains(m.Content, "read-only") {
			t.Errorf("rejection %q does not explain the case is read-only", m.Content)
		}
	}
}

func TestStatusChangeProposalAsksForConfirmation(t *testing.T) {
	c := investigatingCase()
	c.Status = StatusInquiry
	client := newScript(true,
		reply("This looks like an ongoing outage.", call(toolRequestStatusChange, `{"to":"investigating","reason":"Ongoing 502s with unknown cause."}`)),
		say("I proposed a formal investigation."),
	)
	tools := &recTools{}
	out, err := run(t, New(Config{}, client), Input{Case: c, UserText: "checkout is failing"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if got := tools.log(); !slices.Equal(got, []string{`request_status_change investigating "Ongoing 502s with unknown cause."`}) {
		t.Fatalf("Tools saw %q", got)
	}
	lines := strings.Split(out.Content, "\n")
	confirm := ""
	for _, l := range lines {
		if strings.HasSuffix(l, "[✅ Yes] [❌ No]") {
			confirm = l
		}
	}
	if confirm == "" || !strings.Contains(confirm, "investigat") {
		t.Fatalf("no confirmation line ending with the button pattern in %q", out.Content)
	}
	if len(out.SuggestedActions) != 2 {
		t.Fatalf("SuggestedActions = %+v", out.SuggestedActions)
	}
	for i, want := range []bool{true, false} {
		a := out.SuggestedActions[i]
		if a.Type != ActionDecide || a.Payload != a.Label || a.Intent["type"] != "confirmation" || a.Intent["confirmation_value"] != want {
			t.Errorf("action %d = %+v", i, a)
		}
	}
	if out.SuggestedActions[0].Label != "Yes" || out.SuggestedActions[1].Label != "No" {
		t.Errorf("labels %q %q", out.SuggestedActions[0].Label, out.SuggestedActions[1].Label)
	}
	if findTool(client.requests()[1].Tools, toolRequestStatusChange) != nil {
		t.Error("request_status_change still offered after a proposal")
	}
	if out.ProgressMade {
		t.Error("a proposal alone is not progress")
	}
}

func TestResolvedNeedsSolutionVerified(t *testing.T) {
	client := newScript(true,
		reply("", call(toolRequestStatusChange, `{"to":"resolved","reason":"fixed"}`)),
		reply("", call(toolUpdateMilestones, `{"completed":["solution_applied","solution_verified"]}`)),
		reply("", call(toolRequestStatusChange, `{"to":"resolved","reason":"The rollback removed the 502s."}`)),
		say("Resolved, pending your confirmation."),
	)
	tools := &recTools{}
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "the rollback worked"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	reqs := client.requests()
	enum := func(r llm.Request) []string {
		tl := findTool(r.Tools, toolRequestStatusChange)
		return tl.Parameters["properties"].(map[string]any)["to"].(map[string]any)["enum"].([]string)
	}
	if got := enum(reqs[0]); !slices.Equal(got, []string{StatusClosed}) {
		t.Errorf("before solution_verified the allowed targets are %v, want [closed]", got)
	}
	if msg := toolMessages(reqs[1])[0].Content; !strings.Contains(msg, "solution_verified") {
		t.Errorf("rejection %q does not name the missing milestone", msg)
	}
	if got := enum(reqs[2]); !slices.Equal(got, []string{StatusResolved, StatusClosed}) {
		t.Errorf("after solution_verified the allowed targets are %v", got)
	}
	want := []string{`update_milestones [solution_applied solution_verified] ""`, `request_status_change resolved "The rollback removed the 502s."`}
	if got := tools.log(); !slices.Equal(got, want) {
		t.Fatalf("Tools saw %q, want %q", got, want)
	}
	if !strings.HasSuffix(strings.Split(out.Content, "\n")[len(strings.Split(out.Content, "\n"))-1], "[✅ Yes] [❌ No]") {
		t.Errorf("content does not end with the confirmation: %q", out.Content)
	}
}

func TestToolRoundLimit(t *testing.T) {
	search := func() llm.ToolCall { return call(toolSearchEvidence, `{"query":"error"}`) }
	client := newScript(true,
		reply("a", search()),
		reply("b", search()),
		reply("c", search()), // tool limit reached: not executed
	)
	tools := &recTools{evidence: []EvidenceHit{{Filename: "app.log", Line: 3, Text: "ERROR pool exhausted"}}}
	out, err := run(t, New(Config{MaxToolRounds: 2}, client), Input{Case: investigatingCase(), UserText: "go"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(client.requests()); n != 3 {
		t.Fatalf("%d model calls, want MaxToolRounds+1 = 3", n)
	}
	if n := len(tools.log()); n != 2 {
		t.Errorf("%d searches ran, want 2", n)
	}
	last := toolMessages(client.requests()[2])
	if !strings.Contains(last[len(last)-1].Content, "tool limit") {
		t.Errorf("last results do not announce the limit: %q", last[len(last)-1].Content)
	}
	if out.Content != "a\n\nb\n\nc" {
		t.Errorf("Content = %q", out.Content)
	}
}

func TestEmptyAnswerIsReplaced(t *testing.T) {
	client := newScript(true,
		reply("", call(toolUpdateMilestones, `{"completed":["symptom_verified"]}`)),
		say(""),
	)
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "go"}, &recTools{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Content, "No answer text") || !strings.Contains(out.Content, "- milestones completed: symptom_verified") {
		t.Errorf("Content = %q", out.Content)
	}
}

func TestClientErrorIsReturnedAsIs(t *testing.T) {
	perr := &llm.ProviderError{Provider: "openai", Status: 429, Reason: "rate limited (429)"}
	client := newScript(true,
		reply("", call(toolUpdateMilestones, `{"completed":["symptom_verified"]}`)),
		func(context.Context, llm.Request, func(string)) (llm.Response, error) { return llm.Response{}, perr },
	)
	out, err := New(Config{}, client).Run(context.Background(), Input{Case: investigatingCase(), UserText: "go"}, &recTools{}, nil)
	if err != perr { // identity: the error must not be wrapped
		t.Fatalf("err = %v, want the client's error itself", err)
	}
	if !slices.Equal(out.MilestonesCompleted, []string{MilestoneSymptomVerified}) {
		t.Errorf("partial output lost the recorded milestone: %+v", out)
	}
}

func TestCancellation(t *testing.T) {
	t.Run("while streaming", func(t *testing.T) {
		started := make(chan struct{})
		client := newScript(true, func(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Response, error) {
			onDelta("partial ")
			close(started)
			<-ctx.Done()
			return llm.Response{}, ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := New(Config{}, client).Run(ctx, Input{Case: investigatingCase(), UserText: "go"}, &recTools{}, nil)
			done <- err
		}()
		<-started
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancellation")
		}
	})
	t.Run("while a tool runs", func(t *testing.T) {
		client := newScript(true, reply("", call(toolSearchKnowledge, `{"query":"502"}`)), say("never"))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := New(Config{}, client).Run(ctx, Input{Case: investigatingCase(), UserText: "go"}, &recTools{block: true}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if n := len(client.requests()); n != 1 {
			t.Errorf("%d model calls after cancellation, want 1", n)
		}
	})
	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, a := range []*Agent{New(Config{}, newScript(true)), New(Config{}, nil)} {
			if _, err := a.Run(ctx, Input{UserText: "x"}, &recTools{}, nil); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.EnsureDefaults()
	want := Config{ContextTokens: 12000, RecentTurns: 6, MaxToolRounds: 6, MaxRepairRounds: 2, MaxTokens: 1500}
	if c != want {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	c = Config{ContextTokens: 100}
	c.EnsureDefaults()
	if c.ContextTokens != MinContextTokens {
		t.Errorf("ContextTokens = %d, want the minimum %d", c.ContextTokens, MinContextTokens)
	}
	if New(Config{}, nil).Configured() || !New(Config{}, newScript(true)).Configured() {
		t.Error("Configured does not reflect the client")
	}
}

func TestToolCallsWithoutIDsGetOne(t *testing.T) {
	client := newScript(true,
		reply("", llm.ToolCall{Name: toolSearchEvidence, Arguments: `{"query":"x"}`}),
		say("ok"),
	)
	if _, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "go"}, &recTools{}); err != nil {
		t.Fatal(err)
	}
	res := toolMessages(client.requests()[1])
	if len(res) != 1 || res[0].ToolCallID == "" {
		t.Fatalf("tool result without id: %+v", res)
	}
}
