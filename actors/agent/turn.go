package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// turn is the state of one Run: what the case looks like now (after this
// turn's validated tool calls), which tools are still offered, and what the
// turn produced. It is owned by the goroutine running Run.
type turn struct {
	cfg    Config
	in     *Input
	tools  Tools
	status string

	before    []string // milestones completed when the turn started
	completed []string // milestones completed now, canonical order
	hyps      []Hypothesis

	strikes   map[string]int  // invalid or failed calls per tool
	withdrawn map[string]bool // tools no longer offered this turn
	proposal  *proposal
	sources   []Source
	progress  bool
	effects   []string // mutating calls that succeeded, for the fallback text

	toolCalls    int
	repairRounds int
	modelCalls   int
	jsonRepaired bool
	usage        llm.Usage
	provider     string
	headroom     int // tokens the tool loop may still add to the prompt

	// nextTools are the tools requestExtras sized for the next request;
	// toolRound sends them (nothing changes the turn in between) instead
	// of building the schemas again.
	nextTools []llm.Tool
}

// proposal is a status change the model asked for this turn.
type proposal struct{ from, to, reason string }

func newTurn(cfg Config, in *Input, tools Tools) *turn {
	t := &turn{
		cfg:       cfg,
		in:        in,
		tools:     tools,
		status:    normalizeStatus(in.Case.Status),
		before:    canonicalMilestones(in.Case.Milestones),
		hyps:      slices.Clone(in.Case.Hypotheses),
		strikes:   map[string]int{},
		withdrawn: map[string]bool{},
	}
	t.completed = slices.Clone(t.before)
	for _, s := range in.Knowledge {
		t.addSource(s)
	}
	return t
}

// normalizeStatus maps the older name "consulting" and an empty status to
// inquiry. Unknown statuses are kept and get the read-only tool set.
func normalizeStatus(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "consulting" {
		return StatusInquiry
	}
	return s
}

func (t *turn) offers(s *toolSpec) bool {
	if t.withdrawn[s.name] || !slices.Contains(s.statuses, t.status) {
		return false
	}
	if s.needsEvidenceTools {
		if _, ok := evidenceTools(t); !ok {
			return false
		}
	}
	return s.name != toolRequestStatusChange || len(t.allowedNext()) > 0
}

func (t *turn) whyNotOffered(s *toolSpec) string {
	switch {
	case t.withdrawn[s.name]:
		return "this tool was withdrawn for the rest of this turn"
	case s.mutating && !slices.Contains(s.statuses, t.status) && terminal(t.status):
		return fmt.Sprintf("the case is %s and read-only, so this tool is not available", t.status)
	default:
		return fmt.Sprintf("this tool is not available while the case is %s", t.status)
	}
}

// offeredTools are the tool definitions for the next request.
func (t *turn) offeredTools() []llm.Tool {
	var out []llm.Tool
	for i := range toolSpecs {
		s := &toolSpecs[i]
		if t.offers(s) {
			out = append(out, s.tool(t))
		}
	}
	return out
}

func (t *turn) offeredNames() []string {
	var out []string
	for i := range toolSpecs {
		if t.offers(&toolSpecs[i]) {
			out = append(out, toolSpecs[i].name)
		}
	}
	if out == nil {
		return []string{"none"}
	}
	return out
}

func (t *turn) allowedNext() []string { return nextStatuses(t.status, t.completed) }

func (t *turn) hypothesisIDs() []string {
	var ids []string
	for _, h := range t.hyps {
		if h.ID != "" && !slices.Contains(ids, h.ID) {
			ids = append(ids, h.ID)
		}
	}
	return ids
}

func (t *turn) hypothesisByStatement(statement string) *Hypothesis {
	s := strings.ToLower(strings.Join(strings.Fields(statement), " "))
	if s == "" {
		return nil
	}
	for i := range t.hyps {
		if strings.ToLower(strings.Join(strings.Fields(t.hyps[i].Statement), " ")) == s {
			return &t.hyps[i]
		}
	}
	return nil
}

// addSource records a knowledge hit the answer used, once.
func (t *turn) addSource(s Source) {
	if s.Title == "" && s.URL == "" && s.DocumentID == "" {
		return
	}
	for _, have := range t.sources {
		if (s.DocumentID != "" && have.DocumentID == s.DocumentID) ||
			(s.DocumentID == "" && have.Title == s.Title && have.URL == s.URL) {
			return
		}
	}
	t.sources = append(t.sources, s)
}

// newMilestones are the milestones completed during this turn.
func (t *turn) newMilestones() []string {
	var out []string
	for _, m := range t.completed {
		if !slices.Contains(t.before, m) {
			out = append(out, m)
		}
	}
	return out
}

func (t *turn) account(r llm.Response) {
	t.usage.PromptTokens += r.Usage.PromptTokens
	t.usage.CompletionTokens += r.Usage.CompletionTokens
	if r.Provider != "" {
		t.provider = r.Provider
	}
}

// effectsSummary stands in for an answer when the model wrote no text.
func (t *turn) effectsSummary() string {
	if len(t.effects) == 0 {
		return "_No answer was produced this turn. Please rephrase or add detail._"
	}
	var b strings.Builder
	b.WriteString("_No answer text was produced this turn. Recorded:_")
	for _, e := range t.effects {
		b.WriteString("\n- ")
		b.WriteString(e)
	}
	return b.String()
}

// finish appends what the agent adds after the model's answer: the
// confirmation request for a proposed status change, then the sources.
func (t *turn) finish(em *emitter) {
	if p := t.proposal; p != nil {
		em.block(confirmationLine(p))
	}
	if len(t.sources) > 0 {
		em.block(sourcesList(t.sources))
	}
}

func (t *turn) output(em *emitter) Output {
	out := Output{
		Content:             em.text(),
		Sources:             slices.Clone(t.sources),
		Usage:               t.usage,
		Provider:            t.provider,
		MilestonesCompleted: t.newMilestones(),
		ProgressMade:        t.progress,
		ToolCalls:           t.toolCalls,
		RepairRounds:        t.repairRounds,
	}
	if p := t.proposal; p != nil {
		out.SuggestedActions = confirmationActions(p)
	}
	return out
}

// confirmationQuestions word the question per target status.
var confirmationQuestions = map[string]string{
	StatusInvestigating: "Start a formal investigation of this case?",
	StatusResolved:      "Mark this case as resolved?",
	StatusClosed:        "Close this case?",
}

// confirmationLine ends with the literal pattern the copilot turns into
// Yes/No buttons (contract §4.8).
func confirmationLine(p *proposal) string {
	q := confirmationQuestions[p.to]
	if q == "" {
		q = fmt.Sprintf("Change the status to %s?", p.to)
	}
	reason := strings.ReplaceAll(clip(oneLine(p.reason), 300), "[✅ Yes] [❌ No]", "")
	return fmt.Sprintf("**%s** (%s → %s: %s) [✅ Yes] [❌ No]", q, p.from, p.to, reason)
}

func confirmationActions(p *proposal) []SuggestedAction {
	return []SuggestedAction{
		{
			Type: ActionDecide, Label: "Yes", Payload: "Yes",
			Body:   fmt.Sprintf("Move the case from %s to %s", p.from, p.to),
			Intent: map[string]any{"type": "confirmation", "confirmation_value": true},
		},
		{
			Type: ActionDecide, Label: "No", Payload: "No",
			Body:   fmt.Sprintf("Keep the case in %s", p.from),
			Intent: map[string]any{"type": "confirmation", "confirmation_value": false},
		},
	}
}

// sourcesList renders the Markdown "Sources" list. Only http(s) and
// site-relative URLs become links.
func sourcesList(sources []Source) string {
	var b strings.Builder
	b.WriteString("**Sources**")
	for _, s := range sources {
		title := oneLine(s.Title)
		if title == "" {
			title = oneLine(s.DocumentID)
		}
		if title == "" {
			title = "Untitled document"
		}
		title = escapeLinkText(clip(title, 200))
		b.WriteString("\n- ")
		if u := safeURL(s.URL); u != "" {
			b.WriteString("[" + title + "](" + u + ")")
		} else {
			b.WriteString(title)
		}
	}
	return b.String()
}

func escapeLinkText(s string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(s)
}

func safeURL(u string) string {
	u = strings.TrimSpace(u)
	lower := strings.ToLower(u)
	if !(strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") ||
		(strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//"))) {
		return ""
	}
	if strings.ContainsAny(u, "\n\r\t") {
		return ""
	}
	return strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E").Replace(u)
}
