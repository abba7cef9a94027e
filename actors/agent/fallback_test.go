package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

func TestStructuredOutputFallback(t *testing.T) {
	client := newScript(false,
		raw("```json\n"+`{"answer":"The LB log shows 502s from 14:05.","actions":[`+
			`{"tool":"update_milestones","arguments":{"completed":["symptom_verified"],"note":"LB log"}},`+
			`{"tool":"search_knowledge","arguments":"{\"query\":\"502 upstream pool\"}"}]}`+"\n```"),
		raw(`{"answer":"The runbook says to raise the pool size [Pool runbook].","actions":[]}`),
	)
	tools := &recTools{knowledge: []Source{{DocumentID: "kb-7", Title: "Pool runbook", URL: "https://kb.example/pool", Snippet: "Raise max_conns."}}}
	var deltas []string
	out, err := New(Config{}, client).Run(t.Context(), Input{Case: investigatingCase(), UserText: "see the LB log"}, tools,
		func(s string) { deltas = append(deltas, s) })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(deltas, "") != out.Content {
		t.Fatalf("deltas %q do not add up to Content %q", deltas, out.Content)
	}
	for _, d := range deltas {
		if strings.Contains(d, `"answer"`) || strings.Contains(d, "{") {
			t.Errorf("JSON leaked to onDelta: %q", d)
		}
	}
	want := "The LB log shows 502s from 14:05.\n\nThe runbook says to raise the pool size [Pool runbook].\n\n**Sources**\n- [Pool runbook](https://kb.example/pool)"
	if out.Content != want {
		t.Errorf("Content = %q, want %q", out.Content, want)
	}
	if got := tools.log(); !slices.Equal(got, []string{`update_milestones [symptom_verified] "LB log"`, `search_knowledge "502 upstream pool" 5`}) {
		t.Errorf("Tools saw %q", got)
	}
	if !slices.Equal(out.MilestonesCompleted, []string{MilestoneSymptomVerified}) || !out.ProgressMade || out.ToolCalls != 2 {
		t.Errorf("output %+v", out)
	}
	reqs := client.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.Tools != nil || r.ResponseFormat == nil || r.ResponseFormat.Name != responseFormatName {
			t.Fatalf("request without the structured format or with tools: %+v", r)
		}
	}
	sys := reqs[0].Messages[0].Content
	if !strings.Contains(sys, "## Reply format") || !strings.Contains(sys, "- update_milestones: ") {
		t.Error("system prompt does not describe the JSON reply and the actions")
	}
	last := reqs[1].Messages[len(reqs[1].Messages)-1]
	if last.Role != llm.RoleUser || !strings.Contains(last.Content, "Results of your actions") || !strings.Contains(last.Content, "Raise max_conns.") {
		t.Errorf("follow-up message = %+v", last)
	}
}

func TestStructuredOutputMutationsOnlyNeedNoFollowUp(t *testing.T) {
	client := newScript(false,
		raw(`{"answer":"Recorded.","actions":[{"tool":"record_hypothesis","arguments":{"statement":"Pool too small","category":"config","confidence":"probable"}}]}`),
	)
	tools := &recTools{}
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "x"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if len(client.requests()) != 1 || out.Content != "Recorded." || len(tools.log()) != 1 {
		t.Errorf("requests=%d content=%q tools=%q", len(client.requests()), out.Content, tools.log())
	}
}

func TestStructuredOutputInvalidActionIsRepaired(t *testing.T) {
	client := newScript(false,
		raw(`{"answer":"Noted.","actions":[{"tool":"update_milestones","arguments":{"completed":["rootcause"]}}]}`),
		raw(`{"answer":"","actions":[{"tool":"update_milestones","arguments":{"completed":["root_cause_identified"]}}]}`),
	)
	tools := &recTools{}
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "x"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if got := tools.log(); !slices.Equal(got, []string{`update_milestones [root_cause_identified] ""`}) {
		t.Errorf("Tools saw %q", got)
	}
	reqs := client.requests()
	if msg := reqs[1].Messages[len(reqs[1].Messages)-1].Content; !strings.Contains(msg, `completed[0] "rootcause" is not one of`) {
		t.Errorf("follow-up lacks the correction: %q", msg)
	}
	if out.RepairRounds != 1 || out.Content != "Noted." {
		t.Errorf("RepairRounds=%d Content=%q", out.RepairRounds, out.Content)
	}
}

func TestStructuredOutputInvalidJSON(t *testing.T) {
	t.Run("repaired", func(t *testing.T) {
		client := newScript(false,
			raw(`Sure! {"answer": "unterminated`),
			raw(`{"answer":"Check the pool.","actions":[]}`),
		)
		out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "x"}, &recTools{})
		if err != nil {
			t.Fatal(err)
		}
		if out.Content != "Check the pool." || out.RepairRounds != 1 {
			t.Errorf("Content=%q RepairRounds=%d", out.Content, out.RepairRounds)
		}
		if msg := client.requests()[1].Messages; !strings.Contains(msg[len(msg)-1].Content, "not the JSON object required") {
			t.Errorf("repair request = %q", msg[len(msg)-1].Content)
		}
	})
	t.Run("raw text after one repair", func(t *testing.T) {
		client := newScript(false,
			raw("not json"),
			raw("The pool is too small; raise max_conns."),
		)
		out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "x"}, &recTools{})
		if err != nil {
			t.Fatal(err)
		}
		if out.Content != "The pool is too small; raise max_conns." || len(client.requests()) != 2 || out.RepairRounds != 1 {
			t.Errorf("Content=%q requests=%d RepairRounds=%d", out.Content, len(client.requests()), out.RepairRounds)
		}
	})
}

func TestParseStructured(t *testing.T) {
	cases := []struct {
		in      string
		ok      bool
		answer  string
		actions int
	}{
		{`{"answer":"a","actions":[]}`, true, "a", 0},
		{"```json\n{\"answer\":\"a\"}\n```", true, "a", 0},
		{`{"answer":"a","actions":[{"tool":"x","arguments":{}},{"tool":"y"}]}`, true, "a", 2},
		{`{"actions":[]}`, false, "", 0},
		{`{"answer":5}`, false, "", 0},
		{`no braces`, false, "", 0},
		{`}{`, false, "", 0},
	}
	for _, tc := range cases {
		r, err := parseStructured(tc.in)
		if (err == nil) != tc.ok || r.answer != tc.answer || len(r.calls) != tc.actions {
			t.Errorf("parseStructured(%q) = %+v, %v", tc.in, r, err)
		}
	}
}
