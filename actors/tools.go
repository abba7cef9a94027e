package actors

import (
	"context"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors/agent"
)

// Tool operations: requests a turn child sends to its case actor. The case
// actor re-validates them against the current state, persists the events and
// answers.
type (
	opMilestones struct {
		turn      int
		completed []string
		note      string
	}
	opRecordHypothesis struct {
		turn int
		h    agent.Hypothesis
	}
	opEvaluateHypothesis struct {
		turn                              int
		id, status, confidence, rationale string
	}
	opProposeSolution struct {
		turn              int
		kind, description string
	}
	opProposeStatus struct {
		turn       int
		to, reason string
	}
)

// caseTools implements agent.Tools for one turn by asking the case actor.
type caseTools struct {
	caseID    string
	turn      int
	timeout   time.Duration
	engine    *actor.Engine
	parent    *actor.PID
	evidence  EvidenceSource  // nil: the evidence tools are unavailable
	knowledge KnowledgeSource // nil: search_knowledge is unavailable
	owner     string
}

var (
	_ agent.Tools                 = (*caseTools)(nil)
	_ agent.EvidenceTools         = (*caseTools)(nil)
	_ agent.RegexEvidenceSearcher = (*caseTools)(nil)
)

func (t *caseTools) ask(ctx context.Context, op any) (any, error) {
	r := &request{caseID: t.caseID, op: op, reply: make(chan result, 1)}
	t.engine.Send(t.parent, r)
	timer := time.NewTimer(t.timeout)
	defer timer.Stop()
	select {
	case res := <-r.reply:
		return res.val, res.err
	case <-timer.C:
		return nil, ErrTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *caseTools) UpdateMilestones(ctx context.Context, completed []string, note string) ([]string, error) {
	v, err := t.ask(ctx, opMilestones{turn: t.turn, completed: completed, note: note})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

func (t *caseTools) RecordHypothesis(ctx context.Context, h agent.Hypothesis) (string, error) {
	v, err := t.ask(ctx, opRecordHypothesis{turn: t.turn, h: h})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (t *caseTools) EvaluateHypothesis(ctx context.Context, id, status, confidence, rationale string) error {
	_, err := t.ask(ctx, opEvaluateHypothesis{turn: t.turn, id: id, status: status, confidence: confidence, rationale: rationale})
	return err
}

func (t *caseTools) ProposeSolution(ctx context.Context, kind, description string) (string, error) {
	v, err := t.ask(ctx, opProposeSolution{turn: t.turn, kind: kind, description: description})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

func (t *caseTools) RequestStatusChange(ctx context.Context, to, reason string) error {
	_, err := t.ask(ctx, opProposeStatus{turn: t.turn, to: to, reason: reason})
	return err
}

func (t *caseTools) SearchKnowledge(ctx context.Context, query string, limit int) ([]agent.Source, error) {
	if t.knowledge == nil {
		return nil, agent.ErrToolUnavailable
	}
	return t.knowledge.Search(ctx, t.owner, t.caseID, query, limit)
}

func (t *caseTools) SearchEvidence(ctx context.Context, query string, limit int) ([]agent.EvidenceHit, error) {
	if t.evidence == nil {
		return nil, agent.ErrToolUnavailable
	}
	return t.evidence.Search(ctx, t.caseID, query, limit)
}

func (t *caseTools) SearchEvidenceRegex(ctx context.Context, pattern string, limit int) ([]agent.EvidenceHit, error) {
	if t.evidence == nil {
		return nil, agent.ErrToolUnavailable
	}
	return t.evidence.SearchRegex(ctx, t.caseID, pattern, limit)
}

func (t *caseTools) ListEvidence(ctx context.Context) ([]agent.EvidenceFile, error) {
	if t.evidence == nil {
		return nil, agent.ErrToolUnavailable
	}
	return t.evidence.List(ctx, t.caseID)
}

func (t *caseTools) ReadEvidence(ctx context.Context, id string, from, to int) (agent.EvidenceText, error) {
	if t.evidence == nil {
		return agent.EvidenceText{}, agent.ErrToolUnavailable
	}
	return t.evidence.Read(ctx, t.caseID, id, from, to)
}

func (t *caseTools) EvidenceTimeline(ctx context.Context) ([]agent.TimelineEvent, error) {
	if t.evidence == nil {
		return nil, agent.ErrToolUnavailable
	}
	return t.evidence.Timeline(ctx, t.caseID)
}
