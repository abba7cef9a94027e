package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// The validated actions.

type milestonesAction struct {
	completed []string
	note      string
}

func (a *milestonesAction) run(ctx context.Context, t *turn) (string, error) {
	after, err := t.tools.UpdateMilestones(ctx, a.completed, a.note)
	if err != nil {
		return "", err
	}
	if after == nil {
		after = append(slices.Clone(t.completed), a.completed...)
	}
	var added []string
	for _, m := range canonicalMilestones(after) {
		if !slices.Contains(t.completed, m) {
			added = append(added, m)
		}
	}
	t.completed = canonicalMilestones(append(slices.Clone(t.completed), after...))
	if len(added) > 0 {
		t.progress = true
		t.effects = append(t.effects, "milestones completed: "+strings.Join(added, ", "))
	}
	var open []string
	for _, m := range milestones {
		if !slices.Contains(t.completed, m) {
			open = append(open, m)
		}
	}
	return fmt.Sprintf("Recorded. Completed milestones: %s. Still open: %s.",
		listOrNone(t.completed), listOrNone(open)), nil
}

type hypothesisAction struct{ h Hypothesis }

func (a *hypothesisAction) run(ctx context.Context, t *turn) (string, error) {
	id, err := t.tools.RecordHypothesis(ctx, a.h)
	if err != nil {
		return "", err
	}
	h := a.h
	h.ID = id
	t.hyps = append(t.hyps, h)
	t.progress = true
	t.effects = append(t.effects, fmt.Sprintf("hypothesis %s recorded: %s", id, clipChars(h.Statement, 120)))
	if id == "" {
		return fmt.Sprintf("Recorded the hypothesis (%s, %s, %s), but no id was returned.", h.Status, h.Confidence, h.Category), nil
	}
	return fmt.Sprintf("Recorded hypothesis %s (%s, %s, %s).", id, h.Status, h.Confidence, h.Category), nil
}

type evaluateAction struct{ id, status, confidence, rationale string }

func (a *evaluateAction) run(ctx context.Context, t *turn) (string, error) {
	if err := t.tools.EvaluateHypothesis(ctx, a.id, a.status, a.confidence, a.rationale); err != nil {
		return "", err
	}
	for i := range t.hyps {
		if t.hyps[i].ID == a.id {
			t.hyps[i].Status, t.hyps[i].Confidence, t.hyps[i].Rationale = a.status, a.confidence, a.rationale
		}
	}
	t.progress = true
	t.effects = append(t.effects, fmt.Sprintf("hypothesis %s evaluated: %s, %s", a.id, a.status, a.confidence))
	return fmt.Sprintf("Updated hypothesis %s: %s, %s.", a.id, a.status, a.confidence), nil
}

type solutionAction struct{ kind, description string }

func (a *solutionAction) run(ctx context.Context, t *turn) (string, error) {
	id, err := t.tools.ProposeSolution(ctx, a.kind, a.description)
	if err != nil {
		return "", err
	}
	t.progress = true
	t.effects = append(t.effects, fmt.Sprintf("solution %s proposed (%s)", id, a.kind))
	return fmt.Sprintf("Recorded solution %s (%s). Mark %s once the engineer has proposed or accepted it, %s once applied, %s once the symptom is gone.",
		id, a.kind, MilestoneSolutionProposed, MilestoneSolutionApplied, MilestoneSolutionVerified), nil
}

type statusAction struct{ to, reason string }

func (a *statusAction) run(ctx context.Context, t *turn) (string, error) {
	if err := t.tools.RequestStatusChange(ctx, a.to, a.reason); err != nil {
		return "", err
	}
	t.proposal = &proposal{from: t.status, to: a.to, reason: a.reason}
	t.withdrawn[toolRequestStatusChange] = true // one proposal per turn
	t.effects = append(t.effects, "status change to "+a.to+" proposed")
	return fmt.Sprintf("Proposal recorded: %s → %s. The engineer will be asked to confirm below your answer; explain the reason in your answer and do not ask for confirmation yourself.", t.status, a.to), nil
}

type knowledgeAction struct {
	query string
	limit int
}

func (a *knowledgeAction) run(ctx context.Context, t *turn) (string, error) {
	hits, err := t.tools.SearchKnowledge(ctx, a.query, a.limit)
	if err != nil {
		return "", err
	}
	if len(hits) > a.limit {
		hits = hits[:a.limit]
	}
	if len(hits) == 0 {
		return "No knowledge base articles matched.", nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d knowledge base article(s) matched:\n", len(hits))
	for _, h := range hits {
		t.addSource(h)
		b.WriteString(dataBlock(knowledgeHeader(h), clipChars(sanitizeData(h.Snippet), knowledgeSnipChars)))
		b.WriteString("\n")
	}
	return b.String(), nil
}

type evidenceAction struct {
	query string
	regex bool
	limit int
}

func (a *evidenceAction) run(ctx context.Context, t *turn) (string, error) {
	var hits []EvidenceHit
	var err error
	if a.regex {
		rs, ok := t.tools.(RegexEvidenceSearcher)
		if !ok {
			return "Regular-expression search is not available; search for plain words instead.", nil
		}
		hits, err = rs.SearchEvidenceRegex(ctx, a.query, a.limit)
	} else {
		hits, err = t.tools.SearchEvidence(ctx, a.query, a.limit)
	}
	if err != nil {
		return "", err
	}
	if len(hits) > a.limit {
		hits = hits[:a.limit]
	}
	if len(hits) == 0 {
		return "No evidence lines matched.", nil
	}
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "%s:%d: %s\n", attr(h.Filename), h.Line, clipChars(oneLine(h.Text), evidenceLineChars))
	}
	return fmt.Sprintf("%d evidence line(s) matched:\n", len(hits)) + dataBlock("evidence-search", sanitizeData(b.String())), nil
}

// callResult is the answer to one tool call.
type callResult struct {
	text        string
	invalid     bool
	informative bool // the model should read it (search results, corrections)
}

// runCalls validates and executes the calls of one reply in order. An error
// is returned only when ctx ends; tool failures become results.
func (t *turn) runCalls(ctx context.Context, calls []llm.ToolCall, lastRound bool) ([]callResult, error) {
	results := make([]callResult, len(calls))
	repaired := false
	for i, c := range calls {
		t.toolCalls++
		t.headroom -= EstimateTokens(c.Name) + EstimateTokens(c.Arguments) + msgOverhead
		if i >= maxCallsPerReply {
			results[i] = callResult{text: fmt.Sprintf("not executed: at most %d tool calls per reply", maxCallsPerReply), informative: true}
			continue
		}
		r, err := t.execute(ctx, c)
		if err != nil {
			return nil, err
		}
		repaired = repaired || r.invalid
		r.text = t.fitResult(r.text)
		if lastRound {
			r.text += limitNote
			t.headroom -= EstimateTokens(limitNote)
		}
		results[i] = r
	}
	if repaired {
		t.repairRounds++
	}
	return results, nil
}

// execute validates one call and, if it is valid, makes it.
func (t *turn) execute(ctx context.Context, c llm.ToolCall) (callResult, error) {
	act, err := t.validate(c.Name, c.Arguments)
	if err != nil {
		var ae *argsError
		if errors.As(err, &ae) && specFor(c.Name) != nil {
			t.strikes[c.Name]++
			if t.strikes[c.Name] >= t.cfg.MaxRepairRounds {
				t.withdrawn[c.Name] = true
				ae.withdrawn = true
			}
		}
		return callResult{text: err.Error(), invalid: true, informative: true}, nil
	}
	text, err := act.run(ctx, t)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return callResult{}, ctxErr
	}
	switch {
	case errors.Is(err, ErrToolUnavailable):
		t.withdrawn[c.Name] = true
		return callResult{text: c.Name + " is unavailable right now; continue without it"}, nil
	case err != nil:
		t.strikes[c.Name]++
		if t.strikes[c.Name] >= t.cfg.MaxRepairRounds {
			t.withdrawn[c.Name] = true
		}
		return callResult{text: fmt.Sprintf("%s failed: %s; do not repeat the same call", c.Name, clip(oneLine(err.Error()), 300)), informative: true}, nil
	}
	var informative bool
	switch act.(type) {
	case *knowledgeAction, *evidenceAction, listEvidenceAction, readEvidenceAction, timelineAction:
		informative = true // the model has to read these before answering
	}
	return callResult{text: text, informative: informative}, nil
}

const limitNote = "\n(The tool limit for this turn is reached: answer now without calling tools.)"

// fitResult keeps a tool result within what is left of the context budget,
// closing a data block the cut left open.
func (t *turn) fitResult(s string) string {
	limit := min(t.headroom/2, maxResultTokens) // leave room for the other calls of the reply
	switch {
	case limit < minResultTokens:
		s = "[result omitted: the context budget for this turn is used up; answer with what you have]"
	case EstimateTokens(s) > limit:
		s = truncateTokens(s, limit-EstimateTokens(dataClose)-1, "[result truncated]")
		if strings.Count(s, dataOpen) > strings.Count(s, dataClose) {
			s += "\n" + dataClose
		}
	}
	t.headroom -= EstimateTokens(s) + msgOverhead
	return s
}

func needsFollowUp(results []callResult) bool {
	for _, r := range results {
		if r.informative {
			return true
		}
	}
	return false
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// toolsTokens estimates what the tool definitions add to a request: the
// estimate of their JSON array as the request carries it, plus a few
// tokens of framing per tool.
func toolsTokens(tools []llm.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	n := 2 + len(tools) - 1 // brackets and commas
	for _, t := range tools {
		n += t.WireSize()
	}
	return (n+3)/4 + 8*len(tools)
}
