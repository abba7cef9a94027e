package agent

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// requestTokens is an independent estimate of a whole request: every
// message's text plus the tool definitions as JSON.
func requestTokens(t *testing.T, req llm.Request) int {
	t.Helper()
	var b strings.Builder
	for _, m := range req.Messages {
		b.WriteString(m.Content)
	}
	if len(req.Tools) > 0 {
		js, err := json.Marshal(req.Tools)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(js)
	}
	return EstimateTokens(b.String())
}

func longHistory(turns, size int) []HistoryMessage {
	var h []HistoryMessage
	for turn := 1; turn <= turns; turn++ {
		for _, role := range []string{"user", "assistant"} {
			head := fmt.Sprintf("Message %s-%d says something specific. ", role, turn)
			h = append(h, HistoryMessage{Role: role, Turn: turn, Content: head + strings.Repeat("filler ", size/7)})
		}
	}
	return h
}

func TestContextBudgetWithHugeInputs(t *testing.T) {
	for _, budget := range []int{MinContextTokens, DefaultContextTokens, 32000} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			c := investigatingCase()
			c.ProblemStatement = strings.Repeat("The checkout fails. ", 3000)
			in := Input{
				Case:     c,
				History:  longHistory(500, 300),
				UserText: "What next? " + strings.Repeat("pasted log line\n", 20000),
				Evidence: []EvidenceDigest{
					{EvidenceID: "ev-small", Filename: "small.txt", Kind: "text", Digest: "small digest stays whole"},
					{EvidenceID: "ev-1", Filename: "app.log", Kind: "logs", Digest: strings.Repeat("ERROR pool exhausted\n", 4000)},
					{EvidenceID: "ev-2", Filename: "metrics.csv", Kind: "metrics", Digest: strings.Repeat("14:05,312\n", 6000)},
				},
			}
			for i := range 10 {
				in.Knowledge = append(in.Knowledge, Source{DocumentID: fmt.Sprint("kb", i), Title: fmt.Sprint("Runbook ", i), Snippet: strings.Repeat("step ", 1000)})
			}
			req := firstRequest(t, Config{ContextTokens: budget}, in)
			if got := requestTokens(t, req); got > budget {
				t.Fatalf("prompt is %d tokens, budget %d", got, budget)
			}
			sys := req.Messages[0].Content
			if strings.Contains(sys, "[prompt truncated]") {
				t.Error("the fitting gave up and cut the system prompt")
			}
			for _, w := range []string{markerDigest, "small digest stays whole", `file="app.log"`, `file="metrics.csv"`,
				"## Earlier conversation (summary)", "older messages omitted", "- [ ] scope_assessed"} {
				if !strings.Contains(sys, w) {
					t.Errorf("system prompt lacks %q", w)
				}
			}
			// The newest turns come verbatim, in order, right before the user message.
			verbatim := req.Messages[1 : len(req.Messages)-1]
			if len(verbatim) == 0 {
				t.Fatal("no turn kept verbatim")
			}
			tail := in.History[len(in.History)-len(verbatim):]
			for i, m := range verbatim {
				if m.Content != tail[i].Content || m.Role != tail[i].Role {
					t.Fatalf("verbatim message %d = %.60q (%s), want %.60q (%s)", i, m.Content, m.Role, tail[i].Content, tail[i].Role)
				}
			}
			if verbatim[0].Role != llm.RoleUser {
				t.Errorf("verbatim history starts with %q", verbatim[0].Role)
			}
			if budget >= DefaultContextTokens && len(verbatim) != 2*DefaultRecentTurns {
				t.Errorf("%d messages verbatim, want the last %d turns", len(verbatim), DefaultRecentTurns)
			}
			// The summary holds the newest older turn, not the oldest.
			first := tail[0].Turn
			if !strings.Contains(sys, fmt.Sprintf("turn %d, FaultMaven: Message assistant-%d says something specific.", first-1, first-1)) {
				t.Errorf("summary lacks turn %d, the newest not shown verbatim", first-1)
			}
			if budget <= DefaultContextTokens && strings.Contains(sys, "Message user-1 says") {
				t.Error("summary kept the oldest turn instead of newer ones")
			}
			user := req.Messages[len(req.Messages)-1].Content
			if !strings.HasPrefix(user, "What next?") || !strings.HasSuffix(user, markerMessage) {
				t.Errorf("huge user message not cut with a marker: %.40q…%q", user, user[max(0, len(user)-40):])
			}
		})
	}
}

func TestContextBudgetRandomized(t *testing.T) {
	seed := uint64(rand.Uint32())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	text := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString([]string{"word ", "ünïcödé ", "日本語 ", "line\n", "<<<END DATA>>> "}[rng.IntN(5)])
		}
		return b.String()
	}
	for range 30 {
		in := Input{Case: investigatingCase(), UserText: text(rng.IntN(60000))}
		in.Case.ProblemStatement = text(rng.IntN(20000))
		for turn := range rng.IntN(80) {
			in.History = append(in.History, HistoryMessage{Role: []string{"user", "assistant"}[rng.IntN(2)], Turn: turn / 2, Content: text(rng.IntN(8000))})
		}
		for range rng.IntN(6) {
			in.Evidence = append(in.Evidence, EvidenceDigest{Filename: "f.log", Digest: text(rng.IntN(40000))})
		}
		for range rng.IntN(12) {
			in.Knowledge = append(in.Knowledge, Source{Title: text(50), Snippet: text(rng.IntN(8000))})
		}
		budget := MinContextTokens + rng.IntN(20000)
		req := firstRequest(t, Config{ContextTokens: budget, RecentTurns: 1 + rng.IntN(8)}, in)
		if got := requestTokens(t, req); got > budget {
			t.Fatalf("seed %d: prompt is %d tokens, budget %d", seed, got, budget)
		}
		if strings.Contains(req.Messages[0].Content, "[prompt truncated]") {
			t.Fatalf("seed %d: the fitting gave up and cut the system prompt", seed)
		}
		for i := 2; i < len(req.Messages); i++ {
			if req.Messages[i].Role == req.Messages[i-1].Role {
				t.Fatalf("seed %d: messages %d and %d are both %s", seed, i-1, i, req.Messages[i].Role)
			}
		}
	}
}

func TestHugeNewestMessageIsCut(t *testing.T) {
	in := Input{Case: investigatingCase(), UserText: "and now?", History: []HistoryMessage{
		{Role: "user", Turn: 1, Content: "first question"},
		{Role: "assistant", Turn: 1, Content: "first answer"},
		{Role: "user", Turn: 2, Content: "here is my log " + strings.Repeat("x", 200000)},
		{Role: "assistant", Turn: 2, Content: "thanks"},
	}}
	req := firstRequest(t, Config{}, in)
	if got := requestTokens(t, req); got > DefaultContextTokens {
		t.Fatalf("prompt is %d tokens", got)
	}
	var cut bool
	for _, m := range req.Messages {
		cut = cut || (strings.HasPrefix(m.Content, "here is my log") && strings.HasSuffix(m.Content, markerMessage))
	}
	if !cut {
		t.Error("the huge message was not kept in cut form")
	}
}

func TestHistoryNormalisation(t *testing.T) {
	in := Input{Case: investigatingCase(), UserText: "now", History: []HistoryMessage{
		{Role: "assistant", Content: "Welcome!"},
		{Role: "user", Content: "one"},
		{Role: "user", Content: "two"},
		{Role: "agent", Content: "reply"},
		{Role: "user", Content: "unanswered"},
	}}
	req := firstRequest(t, Config{}, in)
	var got []string
	for _, m := range req.Messages[1:] {
		got = append(got, m.Role+":"+m.Content)
	}
	want := []string{"user:one\n\ntwo", "assistant:reply", "user:unanswered", "assistant:" + noReplyRecorded, "user:now"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages = %q, want %q", got, want)
	}
	if !strings.Contains(req.Messages[0].Content, "FaultMaven: Welcome!") {
		t.Error("the leading assistant message is not in the summary")
	}
}

func TestTruncateTokens(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 1000), strings.Repeat("é", 999), strings.Repeat("line\n", 300), "short"} {
		for _, n := range []int{0, 3, 10, 50, 400} {
			got := truncateTokens(s, n, markerDigest)
			if EstimateTokens(got) > n && got != "" {
				t.Errorf("truncateTokens(%.10q, %d) = %d tokens", s, n, EstimateTokens(got))
			}
			if EstimateTokens(s) <= n && got != s {
				t.Errorf("truncateTokens changed a string that fits")
			}
			if !strings.HasPrefix(s, strings.TrimSuffix(strings.TrimSuffix(got, markerDigest), "\n")) && got != markerDigest && got != "" {
				t.Errorf("truncateTokens(%.10q, %d) = %.20q is not a prefix", s, n, got)
			}
		}
	}
}

func TestAllocate(t *testing.T) {
	cases := []struct {
		total      int
		needs      []int
		want       []int
		wantSumMax int
	}{
		{total: 1000, needs: []int{100, 100, 100, 100}, want: []int{100, 100, 100, 100}},
		{total: 100, needs: []int{1000, 1000, 1000, 1000}, wantSumMax: 100},
		{total: 1000, needs: []int{0, 5000, 0, 0}, want: []int{0, 1000, 0, 0}},
		{total: 1000, needs: []int{50, 5000, 5000, 10}, wantSumMax: 1000},
	}
	for _, tc := range cases {
		got := allocate(tc.total, tc.needs, shareWeights)
		sum := 0
		for i, g := range got {
			sum += g
			if g > tc.needs[i] || g < 0 {
				t.Errorf("allocate(%d, %v) gave %v", tc.total, tc.needs, got)
			}
		}
		if tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("allocate(%d, %v) = %v, want %v", tc.total, tc.needs, got, tc.want)
		}
		if sum > tc.total || (tc.wantSumMax > 0 && sum != tc.wantSumMax) {
			t.Errorf("allocate(%d, %v) = %v sums to %d", tc.total, tc.needs, got, sum)
		}
	}
}

func TestContextBudgetStructuredMode(t *testing.T) {
	c := investigatingCase()
	c.ProblemStatement = strings.Repeat("The checkout fails. ", 3000)
	for i := range 40 {
		c.Hypotheses = append(c.Hypotheses, Hypothesis{ID: fmt.Sprint("hx", i), Statement: strings.Repeat("statement ", 40), Status: "active", Confidence: "probable", Category: "code"})
	}
	in := Input{
		Case: c, History: longHistory(500, 300), UserText: strings.Repeat("question ", 20000),
		Evidence:  []EvidenceDigest{{Filename: "app.log", Digest: strings.Repeat("ERROR pool exhausted\n", 4000)}},
		Knowledge: []Source{{Title: "Runbook", Snippet: strings.Repeat("step ", 4000)}},
	}
	for _, budget := range []int{MinContextTokens, DefaultContextTokens} {
		client := newScript(false, raw(`{"answer":"ok","actions":[]}`))
		if _, err := run(t, New(Config{ContextTokens: budget}, client), in, &recTools{}); err != nil {
			t.Fatal(err)
		}
		req := client.requests()[0]
		if got := requestTokens(t, req); got > budget {
			t.Fatalf("structured-mode prompt is %d tokens, budget %d", got, budget)
		}
		sys := req.Messages[0].Content
		if strings.Contains(sys, "[prompt truncated]") || !strings.Contains(sys, "## Reply format") || !strings.Contains(sys, `file="app.log"`) {
			t.Errorf("budget %d: system prompt lost a section", budget)
		}
	}
}

func TestToolResultsStayWithinBudget(t *testing.T) {
	c := investigatingCase()
	in := Input{Case: c, History: longHistory(500, 300), UserText: strings.Repeat("question ", 20000),
		Evidence: []EvidenceDigest{{Filename: "app.log", Digest: strings.Repeat("ERROR pool exhausted\n", 4000)}}}
	var hits []EvidenceHit
	for i := range 50 {
		hits = append(hits, EvidenceHit{Filename: "app.log", Line: i, Text: strings.Repeat("long line ", 100)})
	}
	var kb []Source
	for i := range 10 {
		kb = append(kb, Source{DocumentID: fmt.Sprint(i), Title: "Runbook", Snippet: strings.Repeat("step ", 1000)})
	}
	var steps []step
	for range DefaultMaxToolRounds {
		steps = append(steps, reply(strings.Repeat("thinking ", 50),
			call(toolSearchEvidence, `{"query":"ERROR","limit":50}`), call(toolSearchKnowledge, `{"query":"pool","limit":10}`)))
	}
	client := newScript(true, append(steps, say("done"))...)
	if _, err := run(t, New(Config{}, client), in, &recTools{evidence: hits, knowledge: kb}); err != nil {
		t.Fatal(err)
	}
	for i, req := range client.requests() {
		n := requestTokens(t, req)
		for _, m := range req.Messages {
			for _, c := range m.ToolCalls {
				n += EstimateTokens(c.Name + c.Arguments)
			}
		}
		if n > DefaultContextTokens {
			t.Errorf("request %d is %d tokens, budget %d", i+1, n, DefaultContextTokens)
		}
	}
	reqs := client.requests()
	if len(reqs) != DefaultMaxToolRounds+1 {
		t.Errorf("%d model calls, want %d", len(reqs), DefaultMaxToolRounds+1)
	}
	results := toolMessages(reqs[len(reqs)-1])
	for _, r := range results {
		if strings.Count(r.Content, dataOpen) != strings.Count(r.Content, dataClose) {
			t.Errorf("a cut result left a data block open: …%q", r.Content[max(0, len(r.Content)-80):])
		}
	}
	if !strings.Contains(results[0].Content, droppedResult) {
		t.Errorf("the oldest result was not dropped to make room: %.80q", results[0].Content)
	}
	if newest := results[len(results)-2].Content; strings.Contains(newest, droppedResult) || !strings.Contains(newest, "long line") {
		t.Errorf("the newest result was dropped: %.80q", newest)
	}
}

func TestFitLoop(t *testing.T) {
	base := func() []llm.Message {
		return []llm.Message{
			{Role: llm.RoleSystem, Content: strings.Repeat("s", 400)},
			{Role: llm.RoleUser, Content: strings.Repeat("u", 400)},
			{Role: llm.RoleAssistant, Content: strings.Repeat("a", 400)},
			{Role: llm.RoleUser, Content: "current question"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "1", Name: toolSearchEvidence, Arguments: `{"query":"x"}`}}},
			{Role: llm.RoleTool, ToolCallID: "1", Content: strings.Repeat("r", 4000)},
		}
	}
	full := promptTokens(base())

	msgs, start, left := fitLoop(base(), 4, 4, full+500, 100)
	if len(msgs) != 6 || start != 4 || left != 500 || msgs[5].Content != base()[5].Content {
		t.Errorf("within budget and reserve: changed to %d messages, start %d, left %d", len(msgs), start, left)
	}
	msgs, _, left = fitLoop(base(), 4, 4, full+50, 100)
	if msgs[5].Content != base()[5].Content || left != 50 {
		t.Error("the latest round's result was dropped although the budget holds")
	}
	in := base()
	msgs, start, left = fitLoop(in, 4, 4, full-10, 100)
	if msgs[5].Content != droppedResult || len(msgs) != 6 || start != 4 || left < 0 {
		t.Errorf("over budget: result %.20q, %d messages, left %d", msgs[5].Content, len(msgs), left)
	}
	if in[5].Content == droppedResult {
		t.Error("fitLoop modified its input slice")
	}
	msgs, start, left = fitLoop(base(), 4, 4, 150, 100)
	if len(msgs) != 4 || start != 2 || msgs[1].Content != "current question" || msgs[1].Role != llm.RoleUser {
		t.Errorf("far over budget: %d messages, start %d, left %d", len(msgs), start, left)
	}
}
