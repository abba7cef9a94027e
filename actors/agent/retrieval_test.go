package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

func TestRetrievalOnlyAnswer(t *testing.T) {
	c := investigatingCase()
	c.Milestones = []string{MilestoneSymptomVerified}
	tools := &recTools{
		knowledge: []Source{{DocumentID: "kb-2", Title: "Upstream pool sizing", URL: "https://kb.example/pool", Snippet: "Raise max_conns when 502s follow a deploy."}},
		evidence:  []EvidenceHit{{EvidenceID: "ev-1", Filename: "lb.log", Line: 42, Text: "upstream `prematurely` closed connection"}},
	}
	in := Input{
		Case:      c,
		UserText:  "502 after deploy",
		Knowledge: []Source{{DocumentID: "kb-1", Title: "502 triage", Snippet: "Check the load balancer first."}},
		Evidence:  []EvidenceDigest{{EvidenceID: "ev-1", Filename: "lb.log", Kind: "logs", Digest: "312 errors between 14:05 and 14:30. Top: upstream closed."}},
	}
	out, err := run(t, New(Config{}, nil), in, tools)
	if err != nil {
		t.Fatalf("retrieval-only answer failed: %v", err)
	}
	if !out.RetrievalOnly || out.Usage != (llm.Usage{}) {
		t.Errorf("RetrievalOnly=%v Usage=%+v", out.RetrievalOnly, out.Usage)
	}
	if !strings.HasPrefix(out.Content, RetrievalBanner) {
		t.Errorf("answer is not labelled: %.80q", out.Content)
	}
	for _, w := range []string{
		"502 triage", "Upstream pool sizing", "Raise max_conns",
		"`lb.log` line 42: `upstream 'prematurely' closed connection`",
		"312 errors between 14:05 and 14:30.",
		"**timeline_established**: When did it start? What changed just before?",
		"Hypothesis h1",
		"Milestones done: 1 of 8 (symptom_verified)",
	} {
		if !strings.Contains(out.Content, w) {
			t.Errorf("answer lacks %q:\n%s", w, out.Content)
		}
	}
	if strings.Contains(out.Content, "**symptom_verified**:") {
		t.Error("a completed milestone is asked about")
	}
	if !strings.HasSuffix(out.Content, "\n\n**Sources**\n- 502 triage\n- [Upstream pool sizing](https://kb.example/pool)") {
		t.Errorf("answer does not end with the sources: %q", out.Content[max(0, len(out.Content)-120):])
	}
	if len(out.Sources) != 2 {
		t.Errorf("Sources = %+v", out.Sources)
	}
	if len(out.SuggestedActions) != 1 || out.SuggestedActions[0].Type != ActionFreeSpeech || len(out.SuggestedActions[0].Hints) == 0 {
		t.Errorf("SuggestedActions = %+v", out.SuggestedActions)
	}
}

func TestRetrievalOnlyDegradesWithoutTools(t *testing.T) {
	for _, tools := range []Tools{nil, &recTools{searchErr: ErrToolUnavailable}} {
		c := investigatingCase()
		c.Status = StatusInquiry
		out, err := run(t, New(Config{}, nil), Input{Case: c, UserText: "help"}, tools)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{RetrievalBanner, "No knowledge base article matched", "What exactly is failing"} {
			if !strings.Contains(out.Content, w) {
				t.Errorf("answer lacks %q:\n%s", w, out.Content)
			}
		}
		if strings.Contains(out.Content, "**Sources**") {
			t.Error("sources list without sources")
		}
	}
	c := investigatingCase()
	c.Status = StatusClosed
	out, err := run(t, New(Config{}, nil), Input{Case: c}, &recTools{})
	if err != nil || !strings.Contains(out.Content, "closed and read-only") || len(out.SuggestedActions) != 0 {
		t.Errorf("closed case: %v %q %+v", err, out.Content, out.SuggestedActions)
	}
}

func TestNoProviderErrorFallsBackToRetrieval(t *testing.T) {
	client := newScript(true, func(context.Context, llm.Request, func(string)) (llm.Response, error) {
		return llm.Response{}, llm.ErrNoProvider
	})
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "x"}, &recTools{})
	if err != nil || !out.RetrievalOnly || !strings.HasPrefix(out.Content, RetrievalBanner) {
		t.Errorf("err=%v RetrievalOnly=%v content=%.60q", err, out.RetrievalOnly, out.Content)
	}
}

func TestSourcesAreListed(t *testing.T) {
	client := newScript(true,
		reply("Looking.", call(toolSearchKnowledge, `{"query":"502","limit":3}`)),
		say("Per [Pool runbook], raise the pool."),
	)
	tools := &recTools{knowledge: []Source{
		{DocumentID: "kb-1", Title: "502 triage", URL: "https://kb.example/502"}, // duplicate of the pre-fetched hit
		{DocumentID: "kb-3", Title: "Pool runbook [v2]", URL: "https://kb.example/pool (old)"},
		{DocumentID: "kb-4", Title: "Evil", URL: "javascript:alert(1)"},
	}}
	in := Input{Case: investigatingCase(), UserText: "502?", Knowledge: []Source{
		{DocumentID: "kb-1", Title: "502 triage", URL: "https://kb.example/502", Snippet: "LB first."},
		{DocumentID: "kb-2", Title: "Internal notes"},
	}}
	out, err := run(t, New(Config{}, client), in, tools)
	if err != nil {
		t.Fatal(err)
	}
	want := "Looking.\n\nPer [Pool runbook], raise the pool.\n\n**Sources**\n" +
		"- [502 triage](https://kb.example/502)\n- Internal notes\n" +
		"- [Pool runbook \\[v2\\]](https://kb.example/pool%20%28old%29)\n- Evil"
	if out.Content != want {
		t.Errorf("Content =\n%q\nwant\n%q", out.Content, want)
	}
	if len(out.Sources) != 4 {
		t.Errorf("Sources = %+v", out.Sources)
	}
}

func TestNoSourcesNoList(t *testing.T) {
	client := newScript(true, say("Plain answer."))
	out, err := run(t, New(Config{}, client), Input{Case: investigatingCase(), UserText: "x"}, &recTools{})
	if err != nil || out.Content != "Plain answer." || out.Sources != nil {
		t.Errorf("err=%v content=%q sources=%v", err, out.Content, out.Sources)
	}
}
