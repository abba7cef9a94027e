package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// step is one scripted model reply.
type step func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Response, error)

// scriptClient is an llm.Client that plays back steps and records requests.
type scriptClient struct {
	tools bool
	steps []step

	mu   sync.Mutex
	reqs []llm.Request
}

func newScript(tools bool, steps ...step) *scriptClient {
	return &scriptClient{tools: tools, steps: steps}
}

func (c *scriptClient) SupportsTools() bool { return c.tools }

func (c *scriptClient) Stream(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Response, error) {
	c.mu.Lock()
	req.Messages = slices.Clone(req.Messages)
	req.Tools = slices.Clone(req.Tools)
	c.reqs = append(c.reqs, req)
	i := len(c.reqs) - 1
	c.mu.Unlock()
	if i >= len(c.steps) {
		return llm.Response{}, fmt.Errorf("script exhausted: unexpected request %d", i+1)
	}
	return c.steps[i](ctx, req, onDelta)
}

func (c *scriptClient) requests() []llm.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

// streamText sends text in small fragments, as a provider would.
func streamText(text string, onDelta func(string)) {
	for len(text) > 0 {
		n := min(7, len(text))
		for n < len(text) && (text[n]&0xC0) == 0x80 {
			n++
		}
		onDelta(text[:n])
		text = text[n:]
	}
}

var usagePerReply = llm.Usage{PromptTokens: 100, CompletionTokens: 10}

// say is a reply with text only.
func say(text string) step {
	return reply(text)
}

// reply streams text and then asks for calls.
func reply(text string, calls ...llm.ToolCall) step {
	return func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Response, error) {
		streamText(text, onDelta)
		finish := "stop"
		if len(calls) > 0 {
			finish = "tool_calls"
		}
		return llm.Response{Content: text, ToolCalls: calls, FinishReason: finish, Usage: usagePerReply, Provider: "fake"}, nil
	}
}

// raw is a reply whose content is returned verbatim (structured output).
func raw(content string) step {
	return func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Response, error) {
		streamText(content, onDelta)
		return llm.Response{Content: content, FinishReason: "stop", Usage: usagePerReply, Provider: "fake-json"}, nil
	}
}

var callSeq atomic.Int64

func call(name, args string) llm.ToolCall {
	return llm.ToolCall{ID: fmt.Sprintf("call-%d", callSeq.Add(1)), Name: name, Arguments: args}
}

func jsonArgs(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// recTools records every call that reaches it.
type recTools struct {
	mu         sync.Mutex
	calls      []string
	milestones []string
	hyps       int
	knowledge  []Source
	evidence   []EvidenceHit
	searchErr  error
	statusErr  error
	block      bool // searches block until ctx ends
}

func (r *recTools) record(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recTools) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recTools) UpdateMilestones(_ context.Context, completed []string, note string) ([]string, error) {
	r.record("update_milestones %v %q", completed, note)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range completed {
		if !slices.Contains(r.milestones, m) {
			r.milestones = append(r.milestones, m)
		}
	}
	return slices.Clone(r.milestones), nil
}

func (r *recTools) RecordHypothesis(_ context.Context, h Hypothesis) (string, error) {
	r.record("record_hypothesis %q %s %s %s", h.Statement, h.Category, h.Status, h.Confidence)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hyps++
	return fmt.Sprintf("hyp-%d", r.hyps), nil
}

func (r *recTools) EvaluateHypothesis(_ context.Context, id, status, confidence, rationale string) error {
	r.record("evaluate_hypothesis %s %s %s %q", id, status, confidence, rationale)
	return nil
}

func (r *recTools) ProposeSolution(_ context.Context, kind, description string) (string, error) {
	r.record("propose_solution %s %q", kind, description)
	return "sol-1", nil
}

func (r *recTools) RequestStatusChange(_ context.Context, to, reason string) error {
	r.record("request_status_change %s %q", to, reason)
	return r.statusErr
}

func (r *recTools) SearchKnowledge(ctx context.Context, query string, limit int) ([]Source, error) {
	r.record("search_knowledge %q %d", query, limit)
	if r.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return r.knowledge, r.searchErr
}

func (r *recTools) SearchEvidence(ctx context.Context, query string, limit int) ([]EvidenceHit, error) {
	r.record("search_evidence %q %d", query, limit)
	if r.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return r.evidence, r.searchErr
}

// run runs one turn and checks the invariant that the deltas concatenate
// to Output.Content.
func run(t *testing.T, a *Agent, in Input, tools Tools) (Output, error) {
	t.Helper()
	var streamed strings.Builder
	out, err := a.Run(context.Background(), in, tools, func(s string) { streamed.WriteString(s) })
	if err == nil && streamed.String() != out.Content {
		t.Fatalf("deltas do not add up to Content:\ndeltas:  %q\ncontent: %q", streamed.String(), out.Content)
	}
	return out, err
}

func toolNames(tools []llm.Tool) []string {
	var out []string
	for _, tl := range tools {
		out = append(out, tl.Name)
	}
	return out
}

func findTool(tools []llm.Tool, name string) *llm.Tool {
	for i := range tools {
		if tools[i].Name == name {
			return &tools[i]
		}
	}
	return nil
}

// toolMessages returns the tool-result messages of a request.
func toolMessages(req llm.Request) []llm.Message {
	var out []llm.Message
	for _, m := range req.Messages {
		if m.Role == llm.RoleTool {
			out = append(out, m)
		}
	}
	return out
}

func investigatingCase() CaseInfo {
	return CaseInfo{
		ID: "case-1", Title: "Checkout returns 502", Status: StatusInvestigating,
		ProblemStatement: "Since 14:05 the checkout API returns 502 for about 30% of requests.",
		Milestones:       []string{MilestoneTimelineEstablished},
		Hypotheses: []Hypothesis{
			{ID: "h1", Statement: "The upstream pool is exhausted after the 14:00 deploy", Category: "config", Status: "active", Confidence: "probable"},
		},
		Turn: 4,
	}
}
