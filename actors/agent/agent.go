package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// Hypothesis is one candidate cause of the problem. Category, Status and
// Confidence use the method's vocabulary (see method.go).
type Hypothesis struct {
	ID         string
	Statement  string
	Category   string
	Status     string
	Confidence string
	Rationale  string
}

// CaseInfo is the part of a case the agent reasons about.
type CaseInfo struct {
	ID               string
	Title            string
	Status           string
	ProblemStatement string
	// Milestones lists the completed milestones.
	Milestones []string
	Hypotheses []Hypothesis
	// PendingStatus is a status change proposed earlier that still awaits
	// the user's confirmation ("" if none).
	PendingStatus        string
	Turn                 int
	TurnsWithoutProgress int
}

// HistoryMessage is one earlier conversation message. Role is "user" or
// "assistant" (anything but "user" is treated as the assistant).
type HistoryMessage struct {
	Role    string
	Content string
	Turn    int
}

// Source is a knowledge-base hit the answer relies on.
type Source struct {
	DocumentID string
	Title      string
	URL        string
	Snippet    string
}

// EvidenceDigest summarises one uploaded evidence file. Digest is already
// within its own character budget; the agent trims it further only to fit
// the prompt.
type EvidenceDigest struct {
	EvidenceID string
	Filename   string
	Kind       string
	Digest     string
}

// Input is everything one turn needs.
type Input struct {
	Case CaseInfo
	// History holds earlier messages, oldest first, excluding UserText.
	History  []HistoryMessage
	UserText string
	Evidence []EvidenceDigest
	// Knowledge holds hits pre-fetched for UserText; it may be empty.
	Knowledge []Source
}

// Suggested action types (copilot contract §5.2).
const (
	ActionDecide     = "DECIDE"
	ActionRun        = "RUN"
	ActionEvidence   = "EVIDENCE"
	ActionFreeSpeech = "FREE_SPEECH"
)

// SuggestedAction is one entry of a turn response's suggested_actions.
type SuggestedAction struct {
	Type           string
	Label          string
	Payload        string
	Body           string
	Hints          []string
	Intent         map[string]any
	EvidenceNeedID string
}

// Output is the result of one turn.
type Output struct {
	// Content is the Markdown answer. When Sources is non-empty it ends with
	// a "**Sources**" list. The deltas passed to onDelta concatenate to it.
	Content string
	Sources []Source
	// Usage is summed over every model call of the turn.
	Usage    llm.Usage
	Provider string
	// MilestonesCompleted lists the milestones newly completed this turn.
	MilestonesCompleted []string
	// ProgressMade is true when this turn completed a milestone, recorded or
	// evaluated a hypothesis, or proposed a solution.
	ProgressMade     bool
	SuggestedActions []SuggestedAction
	// RetrievalOnly marks an answer built without a language model.
	RetrievalOnly bool
	// ToolCalls counts the tool calls (or structured actions) the model made,
	// valid or not; RepairRounds counts the model replies that needed a
	// correction (invalid tool arguments or invalid JSON).
	ToolCalls    int
	RepairRounds int
}

// Tools are the case actor's side of the tool calls. The agent validates
// every call before making it; the actor persists it. Implementations may
// return ErrToolUnavailable, after which the agent stops offering the tool
// for the rest of the turn.
type Tools interface {
	// UpdateMilestones marks milestones completed and returns the full set
	// of completed milestones afterwards.
	UpdateMilestones(ctx context.Context, completed []string, note string) ([]string, error)
	RecordHypothesis(ctx context.Context, h Hypothesis) (id string, err error)
	EvaluateHypothesis(ctx context.Context, id, status, confidence, rationale string) error
	ProposeSolution(ctx context.Context, kind, description string) (id string, err error)
	// RequestStatusChange records a proposal; the user confirms it later.
	RequestStatusChange(ctx context.Context, to, reason string) error
	SearchKnowledge(ctx context.Context, query string, limit int) ([]Source, error)
	SearchEvidence(ctx context.Context, query string, limit int) ([]EvidenceHit, error)
}

// EvidenceHit is one matching line of an evidence file.
type EvidenceHit struct {
	EvidenceID string
	Filename   string
	Line       int
	Text       string
}

// ErrToolUnavailable is returned by a Tools method that cannot serve now.
var ErrToolUnavailable = errors.New("agent: tool unavailable")

// Config tunes the agent. Zero or negative fields take their defaults.
type Config struct {
	// ContextTokens bounds the prompt (by EstimateTokens); default 12000,
	// at least 6000.
	ContextTokens int
	// RecentTurns is how many of the latest turns are sent verbatim;
	// default 6.
	RecentTurns int
	// MaxToolRounds bounds the model replies whose tool calls are executed;
	// default 6.
	MaxToolRounds int
	// MaxRepairRounds is how many invalid calls of one tool are answered
	// with a correction before the tool is withdrawn for the turn; default 2.
	MaxRepairRounds int
	// MaxTokens bounds each reply; default 1500.
	MaxTokens int
}

// Defaults and limits of Config.
const (
	DefaultContextTokens   = 12000
	MinContextTokens       = 6000
	DefaultRecentTurns     = 6
	DefaultMaxToolRounds   = 6
	DefaultMaxRepairRounds = 2
	DefaultMaxTokens       = 1500
)

// EnsureDefaults fills zero or negative fields with their defaults and
// raises ContextTokens to MinContextTokens, below which the instructions,
// the case file and the tool schemas alone would not fit.
func (c *Config) EnsureDefaults() {
	if c.ContextTokens <= 0 {
		c.ContextTokens = DefaultContextTokens
	}
	c.ContextTokens = max(c.ContextTokens, MinContextTokens)
	if c.RecentTurns <= 0 {
		c.RecentTurns = DefaultRecentTurns
	}
	if c.MaxToolRounds <= 0 {
		c.MaxToolRounds = DefaultMaxToolRounds
	}
	if c.MaxRepairRounds <= 0 {
		c.MaxRepairRounds = DefaultMaxRepairRounds
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = DefaultMaxTokens
	}
}

// Agent runs turns. It holds no per-turn state and is safe for concurrent
// use.
type Agent struct {
	cfg    Config
	client llm.Client
}

// New returns an agent. A nil client means no language model is configured:
// Run then answers from retrieval only.
func New(cfg Config, client llm.Client) *Agent {
	cfg.EnsureDefaults()
	return &Agent{cfg: cfg, client: client}
}

// Configured reports whether a language model is configured.
func (a *Agent) Configured() bool { return a.client != nil }

// EstimateTokens approximates the number of tokens of s as its UTF-8 length
// divided by four, rounded up. It over-counts non-Latin text, which is the
// safe direction for a budget.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }

// Run answers in.UserText. Answer text is passed to onDelta (which may be
// nil) as it is produced, from the goroutine that calls Run or from the
// client's, never after Run returns. Tool calls are validated and then made
// on tools (nil means none are available).
//
// Errors of the model client are returned as they are, with an Output that
// holds what happened before the failure (usage, tool effects). A cancelled
// ctx returns ctx.Err() promptly. Without a configured model (or when the
// client reports llm.ErrNoProvider before answering) Run returns a
// retrieval-only answer and no error.
func (a *Agent) Run(ctx context.Context, in Input, tools Tools, onDelta func(string)) (Output, error) {
	if err := ctx.Err(); err != nil {
		return Output{}, err
	}
	if tools == nil {
		tools = noTools{}
	}
	em := &emitter{on: onDelta}
	defer em.close()
	t := newTurn(a.cfg, &in, tools)
	if a.client == nil {
		return a.retrievalOnly(ctx, t, em)
	}
	err := a.converse(ctx, t, em)
	if errors.Is(err, llm.ErrNoProvider) && t.modelCalls == 1 && em.empty() {
		return a.retrievalOnly(ctx, t, em)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return t.output(em), err
	}
	if strings.TrimSpace(em.text()) == "" {
		em.block(t.effectsSummary())
	}
	t.finish(em)
	return t.output(em), nil
}

// converse runs the model/tool loop: stream a reply, execute its tool calls,
// feed the results back, until the model answers without tools or the round
// limit is reached. The last allowed reply's tool calls are not executed.
// The round before is also the last when the context budget is nearly used
// up.
func (a *Agent) converse(ctx context.Context, t *turn, em *emitter) error {
	jsonMode := !a.client.SupportsTools()
	msgs := a.buildMessages(t, jsonMode)
	loopStart := len(msgs)
	forceLast := false
	for round := 0; ; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		last := round >= a.cfg.MaxToolRounds || forceLast
		var (
			step roundResult
			err  error
		)
		if jsonMode {
			step, msgs, err = a.jsonRound(ctx, t, em, msgs, last)
		} else {
			step, err = a.toolRound(ctx, t, em, msgs)
		}
		if err != nil {
			return err
		}
		if len(step.calls) == 0 || last {
			return nil
		}
		t.headroom -= EstimateTokens(step.raw) + msgOverhead
		if err := ctx.Err(); err != nil {
			return err
		}
		limitNext := round == a.cfg.MaxToolRounds-1
		results, err := t.runCalls(ctx, step.calls, limitNext)
		if err != nil {
			return err
		}
		roundStart := len(msgs)
		if jsonMode {
			if !needsFollowUp(results) {
				return nil
			}
			msgs = append(msgs,
				llm.Message{Role: llm.RoleAssistant, Content: step.raw},
				llm.Message{Role: llm.RoleUser, Content: actionResultsMessage(step.calls, results, limitNext)})
		} else {
			msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: step.raw, ToolCalls: step.calls})
			for i, c := range step.calls {
				msgs = append(msgs, llm.Message{Role: llm.RoleTool, ToolCallID: c.ID, Content: results[i].text})
			}
		}
		msgs, loopStart, t.headroom = fitLoop(msgs, loopStart, roundStart,
			a.cfg.ContextTokens-a.requestExtras(t, jsonMode), a.cfg.ContextTokens/8)
		forceLast = t.headroom < finalRoomTokens
	}
}

// roundResult is what one model reply asked for.
type roundResult struct {
	raw   string // the reply's content as the model wrote it
	calls []llm.ToolCall
}

// toolRound is one streamed reply with native tool calling.
func (a *Agent) toolRound(ctx context.Context, t *turn, em *emitter, msgs []llm.Message) (roundResult, error) {
	tools := t.nextTools
	if tools == nil {
		tools = t.offeredTools()
	}
	t.nextTools = nil
	req := llm.Request{Messages: msgs, Tools: tools, MaxTokens: a.cfg.MaxTokens}
	em.beginRound()
	t.modelCalls++
	resp, err := a.client.Stream(ctx, req, em.delta)
	t.account(resp)
	if err != nil {
		return roundResult{}, err
	}
	em.endRound(resp.Content)
	if len(req.Tools) == 0 {
		return roundResult{raw: resp.Content}, nil // calls to tools not offered are ignored
	}
	calls := make([]llm.ToolCall, len(resp.ToolCalls))
	for i, c := range resp.ToolCalls {
		if c.ID == "" {
			c.ID = fmt.Sprintf("call_%d_%d", t.modelCalls, i)
		}
		calls[i] = c
	}
	return roundResult{raw: resp.Content, calls: calls}, nil
}

// emitter accumulates the answer and forwards every piece of it to onDelta,
// so that the deltas always concatenate to Output.Content. Text of
// successive model replies is separated by a blank line.
type emitter struct {
	mu         sync.Mutex
	on         func(string)
	b          strings.Builder
	sepPending bool
	roundWrote bool
	closed     bool
}

func (e *emitter) beginRound() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sepPending = e.b.Len() > 0
	e.roundWrote = false
}

// delta forwards one fragment of the current reply.
func (e *emitter) delta(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writeLocked(s)
}

// endRound emits full when the client returned content without streaming it.
func (e *emitter) endRound(full string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.roundWrote {
		e.writeLocked(full)
	}
}

// block appends a separate paragraph (used for text the agent adds).
func (e *emitter) block(s string) {
	e.beginRound()
	e.delta(s)
}

func (e *emitter) writeLocked(s string) {
	if e.closed || s == "" {
		return
	}
	if e.sepPending {
		e.sepPending = false
		cur := e.b.String()
		sep := "\n\n"
		switch {
		case strings.HasSuffix(cur, "\n\n"):
			sep = ""
		case strings.HasSuffix(cur, "\n"):
			sep = "\n"
		}
		if sep != "" {
			e.b.WriteString(sep)
			e.emit(sep)
		}
	}
	e.roundWrote = true
	e.b.WriteString(s)
	e.emit(s)
}

func (e *emitter) emit(s string) {
	if e.on != nil {
		e.on(s)
	}
}

func (e *emitter) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.b.String()
}

func (e *emitter) empty() bool { return e.text() == "" }

// close drops any delta a misbehaving client delivers after Run returned.
func (e *emitter) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
}

// noTools stands in for a nil Tools: everything is unavailable.
type noTools struct{}

func (noTools) UpdateMilestones(context.Context, []string, string) ([]string, error) {
	return nil, ErrToolUnavailable
}
func (noTools) RecordHypothesis(context.Context, Hypothesis) (string, error) {
	return "", ErrToolUnavailable
}
func (noTools) EvaluateHypothesis(context.Context, string, string, string, string) error {
	return ErrToolUnavailable
}
func (noTools) ProposeSolution(context.Context, string, string) (string, error) {
	return "", ErrToolUnavailable
}
func (noTools) RequestStatusChange(context.Context, string, string) error { return ErrToolUnavailable }
func (noTools) SearchKnowledge(context.Context, string, int) ([]Source, error) {
	return nil, ErrToolUnavailable
}
func (noTools) SearchEvidence(context.Context, string, int) ([]EvidenceHit, error) {
	return nil, ErrToolUnavailable
}
