package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// evTools adds the evidence tools to recTools.
type evTools struct {
	recTools
	reads [][3]any
}

func (e *evTools) ListEvidence(context.Context) ([]EvidenceFile, error) {
	e.record("list_evidence")
	return []EvidenceFile{{EvidenceID: "ev_1", Filename: "nginx.log", Kind: "logs", SizeBytes: 2048, Lines: 40, Summary: "40 lines, 3 upstream errors"}}, nil
}

func (e *evTools) ReadEvidence(_ context.Context, id string, from, to int) (EvidenceText, error) {
	e.record("read_evidence %s %d-%d", id, from, to)
	e.reads = append(e.reads, [3]any{id, from, to})
	return EvidenceText{Text: "12: upstream timed out (110) while reading response header\n", FromLine: from, ToLine: to, TotalLines: 40}, nil
}

func (e *evTools) EvidenceTimeline(context.Context) ([]TimelineEvent, error) {
	e.record("evidence_timeline")
	return []TimelineEvent{{At: time.Date(2026, 11, 25, 14, 2, 0, 0, time.UTC), Source: "evidence", Text: "first upstream timeout in nginx.log"}}, nil
}

func TestEvidenceToolsOfferedOnlyWhenImplemented(t *testing.T) {
	c := newScript(true, say("ok"))
	if _, err := run(t, New(Config{}, c), Input{Case: investigatingCase(), UserText: "hi"}, &recTools{}); err != nil {
		t.Fatal(err)
	}
	if names := toolNames(c.requests()[0].Tools); slices.Contains(names, toolReadEvidence) {
		t.Fatalf("read_evidence offered without EvidenceTools: %v", names)
	}
	c2 := newScript(true, say("ok"))
	if _, err := run(t, New(Config{}, c2), Input{Case: investigatingCase(), UserText: "hi"}, &evTools{}); err != nil {
		t.Fatal(err)
	}
	names := toolNames(c2.requests()[0].Tools)
	for _, n := range []string{toolListEvidence, toolReadEvidence, toolEvidenceTimeline, toolSearchEvidence} {
		if !slices.Contains(names, n) {
			t.Fatalf("%s not offered: %v", n, names)
		}
	}
}

func TestReadEvidenceValidatedAndRun(t *testing.T) {
	tools := &evTools{}
	c := newScript(true,
		reply("", call(toolReadEvidence, `{"evidence_id":"ev_1","from_line":1,"to_line":5000}`)),
		reply("", call(toolListEvidence, `{}`), call(toolReadEvidence, `{"evidence_id":"ev_1","from_line":10,"to_line":14}`),
			call(toolEvidenceTimeline, `{}`)),
		say("Line 12 shows the upstream timing out."),
	)
	out, err := run(t, New(Config{}, c), Input{Case: investigatingCase(), UserText: "what does the log say?"}, tools)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.reads) != 1 || tools.reads[0] != [3]any{"ev_1", 10, 14} {
		t.Fatalf("only the valid read may reach the tools: %v", tools.reads)
	}
	reqs := c.requests()
	repairs := toolMessages(reqs[1])
	if len(repairs) != 1 || !strings.Contains(repairs[0].Content, "at most 400 lines") {
		t.Fatalf("repair messages: %+v", repairs)
	}
	results := toolMessages(reqs[2])
	joined := ""
	for _, m := range results {
		joined += m.Content + "\n"
	}
	for _, want := range []string{"nginx.log", "upstream timed out", "first upstream timeout"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("tool results lack %q:\n%s", want, joined)
		}
	}
	if !strings.Contains(out.Content, "Line 12") {
		t.Fatalf("content %q", out.Content)
	}
	_ = llm.RoleTool
}

func TestReadEvidenceArgumentProblems(t *testing.T) {
	for raw, want := range map[string]string{
		`{"evidence_id":"ev_1","from_line":50,"to_line":10}`:     "to_line must not be less than from_line",
		`{"evidence_id":"ev_1","from_line":0,"to_line":10}`:      "from_line must be at least 1",
		`{"evidence_id":"","from_line":1,"to_line":2}`:           "evidence_id is required",
		`{"evidence_id":"ev_1"}`:                                 "from_line and to_line are required",
		`{"evidence_id":"ev_1","from_line":1,"to_line":2,"x":1}`: "x",
	} {
		act, problems := parseReadEvidence(nil, raw)
		if act != nil || !strings.Contains(strings.Join(problems, "; "), want) {
			t.Errorf("%s: problems %v, want %q", raw, problems, want)
		}
	}
}

type regexTools struct {
	evTools
	patterns []string
}

func (r *regexTools) SearchEvidenceRegex(_ context.Context, pattern string, limit int) ([]EvidenceHit, error) {
	r.patterns = append(r.patterns, pattern)
	return []EvidenceHit{{EvidenceID: "ev_1", Filename: "nginx.log", Line: 12, Text: "upstream timed out (110)"}}, nil
}

func TestSearchEvidenceRegex(t *testing.T) {
	tools := &regexTools{}
	c := newScript(true,
		reply("", call(toolSearchEvidence, `{"query":"(unclosed","regex":true}`)),
		reply("", call(toolSearchEvidence, `{"query":"timed out \\(\\d+\\)","regex":true}`)),
		say("Found it."),
	)
	if _, err := run(t, New(Config{}, c), Input{Case: investigatingCase(), UserText: "grep it"}, tools); err != nil {
		t.Fatal(err)
	}
	if len(tools.patterns) != 1 || tools.patterns[0] != `timed out \(\d+\)` {
		t.Fatalf("only the valid pattern may reach the tools: %q", tools.patterns)
	}
	repair := toolMessages(c.requests()[1])
	if len(repair) != 1 || !strings.Contains(repair[0].Content, "not a valid RE2 regular expression") {
		t.Fatalf("repair: %+v", repair)
	}
	if res := toolMessages(c.requests()[2]); len(res) == 0 || !strings.Contains(res[len(res)-1].Content, "upstream timed out") {
		t.Fatalf("result: %+v", res)
	}
}
