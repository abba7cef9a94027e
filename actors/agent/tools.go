package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// Tool names.
const (
	toolUpdateMilestones    = "update_milestones"
	toolRecordHypothesis    = "record_hypothesis"
	toolEvaluateHypothesis  = "evaluate_hypothesis"
	toolProposeSolution     = "propose_solution"
	toolRequestStatusChange = "request_status_change"
	toolSearchKnowledge     = "search_knowledge"
	toolSearchEvidence      = "search_evidence"
)

// Limits on tool arguments and results.
const (
	maxArgChars        = 2000 // any string argument
	maxKnowledgeLimit  = 10
	defKnowledgeLimit  = 5
	maxEvidenceLimit   = 50
	defEvidenceLimit   = 20
	maxCallsPerReply   = 16   // further calls in one reply are refused
	maxResultTokens    = 1500 // one tool result
	minResultTokens    = 40   // below this a result is omitted
	evidenceLineChars  = 300
	knowledgeSnipChars = 600
)

// toolSpec describes one tool: its schema for the model and its validator.
type toolSpec struct {
	name        string
	description string
	mutating    bool
	// statuses where the tool is offered.
	statuses []string
	// schema is the arguments' JSON Schema of a tool whose schema is fixed;
	// params builds it for tools whose schema depends on the turn (enums
	// of the case's hypotheses or of the statuses allowed next). One of
	// the two is set.
	schema map[string]any
	params func(t *turn) map[string]any
	// parse validates raw arguments; it returns the problems found or an
	// action that is safe to run.
	parse func(t *turn, raw string) (action, []string)
	// needsEvidenceTools: offered only when the Tools implement EvidenceTools.
	needsEvidenceTools bool
}

// action is a validated tool call.
type action interface {
	run(ctx context.Context, t *turn) (string, error)
}

var allStatuses = []string{StatusInquiry, StatusInvestigating, StatusResolved, StatusClosed}

// toolSpecs lists the tools in the order they are offered.
var toolSpecs = []toolSpec{
	{
		name:        toolUpdateMilestones,
		description: "Record investigation milestones as completed, once the evidence or the engineer's statement establishes them. Idempotent.",
		mutating:    true,
		statuses:    []string{StatusInvestigating},
		schema: object(map[string]any{
			"completed": map[string]any{"type": "array", "minItems": 1, "items": enumOf(milestones, "")},
			"note":      stringProp("What establishes these milestones (one or two sentences)."),
		}, "completed"),
		parse: parseUpdateMilestones,
	},
	{
		name:        toolRecordHypothesis,
		description: "Record a new hypothesis about the cause. Keep two to four active hypotheses that the evidence can tell apart.",
		mutating:    true,
		statuses:    []string{StatusInvestigating},
		schema: object(map[string]any{
			"statement":  stringProp("The suspected cause, as one testable sentence."),
			"category":   enumOf(hypothesisCategories, "Where the cause lies."),
			"confidence": enumOf(confidenceLevels, "How strongly the evidence supports it now."),
			"rationale":  stringProp("Why it is plausible (optional)."),
		}, "statement", "category", "confidence"),
		parse: parseRecordHypothesis,
	},
	{
		name:        toolEvaluateHypothesis,
		description: "Update a hypothesis after evidence supports or contradicts it. Use an id from the case file or from record_hypothesis.",
		mutating:    true,
		statuses:    []string{StatusInvestigating},
		params: func(t *turn) map[string]any {
			id := stringProp("Id of the hypothesis.")
			if ids := t.hypothesisIDs(); len(ids) > 0 {
				id = enumOf(ids, "Id of the hypothesis.")
			}
			return object(map[string]any{
				"hypothesis_id": id,
				"status":        enumOf(hypothesisStatuses, "New status."),
				"confidence":    enumOf(confidenceLevels, "New confidence."),
				"rationale":     stringProp("Which evidence changed the assessment, and how."),
			}, "hypothesis_id", "status", "confidence", "rationale")
		},
		parse: parseEvaluateHypothesis,
	},
	{
		name:        toolProposeSolution,
		description: "Record a proposed fix or mitigation for the engineer to apply.",
		mutating:    true,
		statuses:    []string{StatusInvestigating},
		schema: object(map[string]any{
			"kind":        enumOf(solutionKinds, "Kind of solution."),
			"description": stringProp("What to do, where, and how to check that it worked."),
		}, "kind", "description"),
		parse: parseProposeSolution,
	},
	{
		name:        toolRequestStatusChange,
		description: "Propose changing the case status. The engineer is asked to confirm; nothing changes until they do.",
		mutating:    true,
		statuses:    []string{StatusInquiry, StatusInvestigating},
		params: func(t *turn) map[string]any {
			return object(map[string]any{
				"to":     enumOf(t.allowedNext(), "The proposed status."),
				"reason": stringProp("One sentence the engineer will read."),
			}, "to", "reason")
		},
		parse: parseRequestStatusChange,
	},
	{
		name:        toolSearchKnowledge,
		description: "Search the knowledge base (runbooks, past resolutions, documentation).",
		statuses:    allStatuses,
		schema: object(map[string]any{
			"query": stringProp("What to look for."),
			"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": maxKnowledgeLimit, "description": "Maximum hits (default 5)."},
		}, "query"),
		parse: parseSearchKnowledge,
	},
	{
		name:        toolSearchEvidence,
		description: "Search the lines of this case's uploaded evidence files (keywords, error codes, ids; or a regular expression with regex=true).",
		statuses:    allStatuses,
		schema: object(map[string]any{
			"query": stringProp("Words or identifiers to find (case-insensitive substring), or an RE2 regular expression when regex is true."),
			"regex": map[string]any{"type": "boolean", "description": "Treat query as a regular expression (default false)."},
			"limit": map[string]any{"type": "integer", "minimum": 1, "maximum": maxEvidenceLimit, "description": "Maximum lines (default 20)."},
		}, "query"),
		parse: parseSearchEvidence,
	},
}

// preparedTools are the tools with a fixed schema, encoded once
// (llm.PrepareTool) the first time a turn offers tools: every request
// offers most of them, and their encoding was a visible share of a turn's
// CPU. toolSpecs is complete by then (init appends the evidence tools).
var preparedTools = sync.OnceValue(func() map[string]llm.Tool {
	m := make(map[string]llm.Tool, len(toolSpecs))
	for i := range toolSpecs {
		if s := &toolSpecs[i]; s.params == nil {
			m[s.name] = prepare(llm.Tool{Name: s.name, Description: s.description, Parameters: s.schema})
		}
	}
	return m
})

// tool is s's definition for the next request of t.
func (s *toolSpec) tool(t *turn) llm.Tool {
	if s.params != nil {
		return prepare(llm.Tool{Name: s.name, Description: s.description, Parameters: s.params(t)})
	}
	return preparedTools()[s.name]
}

// prepare encodes tl once for every request that offers it. The schemas
// are this package's own maps of strings and numbers, so encoding cannot
// fail; if it ever did, the request would encode tl again and report it.
func prepare(tl llm.Tool) llm.Tool {
	if p, err := llm.PrepareTool(tl); err == nil {
		return p
	}
	return tl
}

func object(props map[string]any, required ...string) map[string]any {
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

func stringProp(desc string) map[string]any {
	return map[string]any{"type": "string", "maxLength": maxArgChars, "description": desc}
}

func enumOf(values []string, desc string) map[string]any {
	p := map[string]any{"type": "string", "enum": slices.Clone(values)}
	if desc != "" {
		p["description"] = desc
	}
	return p
}

func specFor(name string) *toolSpec {
	for i := range toolSpecs {
		if toolSpecs[i].name == name {
			return &toolSpecs[i]
		}
	}
	return nil
}

// argsError is the correction sent back for an invalid call.
type argsError struct {
	tool      string
	problems  []string
	withdrawn bool
}

func (e *argsError) Error() string {
	tail := "call it again with valid arguments"
	if e.withdrawn {
		tail = "this tool is now withdrawn for the rest of this turn; do not call it again"
	}
	if s := specFor(e.tool); s == nil {
		return fmt.Sprintf("unknown tool %q: %s; %s", e.tool, strings.Join(e.problems, "; "), tail)
	}
	return fmt.Sprintf("invalid arguments for %s: %s; %s", e.tool, strings.Join(e.problems, "; "), tail)
}

// validate checks one call against the tools offered now and the case state.
// Nothing reaches Tools unless validate returned no error.
func (t *turn) validate(name, raw string) (action, error) {
	spec := specFor(name)
	if spec == nil {
		return nil, &argsError{tool: name, problems: []string{"no such tool (available: " + strings.Join(t.offeredNames(), ", ") + ")"}}
	}
	if !t.offers(spec) {
		return nil, &argsError{tool: name, problems: []string{t.whyNotOffered(spec)}}
	}
	act, problems := spec.parse(t, raw)
	if len(problems) > 0 {
		return nil, &argsError{tool: name, problems: problems}
	}
	return act, nil
}

// decodeArgs strictly decodes a JSON object into dst (unknown fields, wrong
// types and trailing data are errors).
func decodeArgs(raw string, dst any) []string {
	s := strings.TrimSpace(raw)
	if s == "" {
		return []string{"arguments are empty; send a JSON object"}
	}
	if s[0] != '{' {
		return []string{"arguments must be a JSON object"}
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return []string{describeJSONError(err, dst)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return []string{"arguments must be a single JSON object with nothing after it"}
	}
	return nil
}

func describeJSONError(err error, dst any) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("arguments are not valid JSON (%v at byte %d)", syn, syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "arguments must be a JSON object"
		}
		return fmt.Sprintf("%s must be %s, not a JSON %s", typ.Field, kindName(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "arguments are not valid JSON (unexpected end)"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Sprintf("%s is not an argument of this tool (allowed: %s)",
			strings.TrimPrefix(err.Error(), "json: unknown field "), strings.Join(jsonFields(dst), ", "))
	default:
		return "arguments are not valid JSON: " + err.Error()
	}
}

func kindName(t reflect.Type) string {
	if t == nil {
		return "a value of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(kindName(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return kindName(t.Elem())
	default:
		return "a " + t.Kind().String()
	}
}

func jsonFields(dst any) []string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag != "" {
			out = append(out, tag)
		}
	}
	return out
}

// Checks shared by the parsers; each appends to problems.

func required(problems *[]string, field, v string) {
	if strings.TrimSpace(v) == "" {
		*problems = append(*problems, field+" is required and must not be empty")
		return
	}
	maxLen(problems, field, v)
}

func maxLen(problems *[]string, field, v string) {
	if n := utf8.RuneCountInString(v); n > maxArgChars {
		*problems = append(*problems, fmt.Sprintf("%s is %d characters; the maximum is %d", field, n, maxArgChars))
	}
	if !utf8.ValidString(v) {
		*problems = append(*problems, field+" is not valid UTF-8")
	}
}

func oneOf(problems *[]string, field, v string, allowed []string) {
	switch {
	case v == "":
		*problems = append(*problems, fmt.Sprintf("%s is required (one of %s)", field, strings.Join(allowed, ", ")))
	case !slices.Contains(allowed, v):
		*problems = append(*problems, fmt.Sprintf("%s %q is not one of %s", field, clip(v, 80), strings.Join(allowed, ", ")))
	}
}

func limitIn(problems *[]string, limit *int, def, hi int) int {
	if limit == nil {
		return def
	}
	if *limit < 1 || *limit > hi {
		*problems = append(*problems, fmt.Sprintf("limit %d must be between 1 and %d", *limit, hi))
	}
	return *limit
}

// clip shortens s to n runes for error messages.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// The parsers, one per tool.

type milestonesArgs struct {
	Completed []string `json:"completed"`
	Note      string   `json:"note"`
}

func parseUpdateMilestones(_ *turn, raw string) (action, []string) {
	var a milestonesArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	if len(a.Completed) == 0 {
		problems = append(problems, "completed is required: list one or more of "+strings.Join(milestones, ", "))
	}
	for i, m := range a.Completed {
		if !slices.Contains(milestones, m) {
			problems = append(problems, fmt.Sprintf("completed[%d] %q is not one of %s", i, clip(m, 80), strings.Join(milestones, ", ")))
		}
	}
	maxLen(&problems, "note", a.Note)
	if problems != nil {
		return nil, problems
	}
	return &milestonesAction{completed: canonicalMilestones(a.Completed), note: strings.TrimSpace(a.Note)}, nil
}

type hypothesisArgs struct {
	Statement  string `json:"statement"`
	Category   string `json:"category"`
	Confidence string `json:"confidence"`
	Rationale  string `json:"rationale"`
}

func parseRecordHypothesis(t *turn, raw string) (action, []string) {
	var a hypothesisArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	required(&problems, "statement", a.Statement)
	oneOf(&problems, "category", a.Category, hypothesisCategories)
	oneOf(&problems, "confidence", a.Confidence, confidenceLevels)
	maxLen(&problems, "rationale", a.Rationale)
	if dup := t.hypothesisByStatement(a.Statement); dup != nil {
		problems = append(problems, fmt.Sprintf("statement duplicates hypothesis %s; use evaluate_hypothesis to update it", dup.ID))
	}
	if problems != nil {
		return nil, problems
	}
	return &hypothesisAction{h: Hypothesis{
		Statement: strings.TrimSpace(a.Statement), Category: a.Category, Status: "active",
		Confidence: a.Confidence, Rationale: strings.TrimSpace(a.Rationale),
	}}, nil
}

type evaluateArgs struct {
	HypothesisID string `json:"hypothesis_id"`
	Status       string `json:"status"`
	Confidence   string `json:"confidence"`
	Rationale    string `json:"rationale"`
}

func parseEvaluateHypothesis(t *turn, raw string) (action, []string) {
	var a evaluateArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	switch ids := t.hypothesisIDs(); {
	case a.HypothesisID == "":
		problems = append(problems, "hypothesis_id is required")
	case !slices.Contains(ids, a.HypothesisID):
		known := "none recorded yet; use record_hypothesis first"
		if len(ids) > 0 {
			known = strings.Join(ids, ", ")
		}
		problems = append(problems, fmt.Sprintf("hypothesis_id %q is not a known hypothesis (known: %s)", clip(a.HypothesisID, 80), known))
	}
	oneOf(&problems, "status", a.Status, hypothesisStatuses)
	oneOf(&problems, "confidence", a.Confidence, confidenceLevels)
	required(&problems, "rationale", a.Rationale)
	if problems != nil {
		return nil, problems
	}
	return &evaluateAction{id: a.HypothesisID, status: a.Status, confidence: a.Confidence, rationale: strings.TrimSpace(a.Rationale)}, nil
}

type solutionArgs struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

func parseProposeSolution(_ *turn, raw string) (action, []string) {
	var a solutionArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	oneOf(&problems, "kind", a.Kind, solutionKinds)
	required(&problems, "description", a.Description)
	if problems != nil {
		return nil, problems
	}
	return &solutionAction{kind: a.Kind, description: strings.TrimSpace(a.Description)}, nil
}

type statusArgs struct {
	To     string `json:"to"`
	Reason string `json:"reason"`
}

func parseRequestStatusChange(t *turn, raw string) (action, []string) {
	var a statusArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	allowed := t.allowedNext()
	switch {
	case a.To == t.status:
		problems = append(problems, fmt.Sprintf("the case is already %s (allowed: %s)", t.status, strings.Join(allowed, ", ")))
	case a.To == StatusResolved && t.status == StatusInvestigating && !slices.Contains(allowed, StatusResolved):
		problems = append(problems, fmt.Sprintf("to %q needs the milestone %s completed first (allowed now: %s)",
			a.To, MilestoneSolutionVerified, strings.Join(allowed, ", ")))
	default:
		oneOf(&problems, "to", a.To, allowed)
	}
	required(&problems, "reason", a.Reason)
	if problems != nil {
		return nil, problems
	}
	return &statusAction{to: a.To, reason: strings.TrimSpace(a.Reason)}, nil
}

type searchArgs struct {
	Query string `json:"query"`
	Limit *int   `json:"limit"`
}

func parseSearchKnowledge(_ *turn, raw string) (action, []string) {
	var a searchArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	required(&problems, "query", a.Query)
	limit := limitIn(&problems, a.Limit, defKnowledgeLimit, maxKnowledgeLimit)
	if problems != nil {
		return nil, problems
	}
	return &knowledgeAction{query: strings.TrimSpace(a.Query), limit: limit}, nil
}

type evidenceSearchArgs struct {
	Query string `json:"query"`
	Regex bool   `json:"regex"`
	Limit *int   `json:"limit"`
}

func parseSearchEvidence(_ *turn, raw string) (action, []string) {
	var a evidenceSearchArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	required(&problems, "query", a.Query)
	limit := limitIn(&problems, a.Limit, defEvidenceLimit, maxEvidenceLimit)
	if a.Regex && strings.TrimSpace(a.Query) != "" {
		if _, err := regexp.Compile(a.Query); err != nil {
			problems = append(problems, "query is not a valid RE2 regular expression: "+clip(err.Error(), 200))
		}
	}
	if problems != nil {
		return nil, problems
	}
	return &evidenceAction{query: strings.TrimSpace(a.Query), regex: a.Regex, limit: limit}, nil
}
