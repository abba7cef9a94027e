package agent

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Evidence tools beyond search: what files the case has, reading a line
// range of one, and the merged timeline. They are read-only and offered in
// every status.

const (
	toolListEvidence     = "list_evidence"
	toolReadEvidence     = "read_evidence"
	toolEvidenceTimeline = "evidence_timeline"

	maxReadLines     = 400 // one read_evidence call
	maxTimelineItems = 60
)

// EvidenceFile describes one uploaded evidence file.
type EvidenceFile struct {
	EvidenceID string
	Filename   string
	Kind       string // logs, metrics, configuration, code, text, image, binary
	SizeBytes  int64
	Lines      int64
	Summary    string
}

// EvidenceText is a line range read from an evidence file.
type EvidenceText struct {
	Text       string
	FromLine   int
	ToLine     int
	TotalLines int64
	Truncated  bool
}

// TimelineEvent is one entry of the case timeline (evidence timestamps,
// status changes, turns), oldest first.
type TimelineEvent struct {
	At     time.Time
	Source string // evidence | status | turn
	Text   string
}

// EvidenceTools are the read-only evidence tools. A Tools value may also
// implement them; when it does not, the tools are not offered.
type EvidenceTools interface {
	ListEvidence(ctx context.Context) ([]EvidenceFile, error)
	ReadEvidence(ctx context.Context, evidenceID string, fromLine, toLine int) (EvidenceText, error)
	EvidenceTimeline(ctx context.Context) ([]TimelineEvent, error)
}

// RegexEvidenceSearcher is implemented by Tools that can search evidence
// with an RE2 regular expression (search_evidence with regex=true). The
// implementation bounds the search in time and matches.
type RegexEvidenceSearcher interface {
	SearchEvidenceRegex(ctx context.Context, pattern string, limit int) ([]EvidenceHit, error)
}

func evidenceTools(t *turn) (EvidenceTools, bool) {
	et, ok := t.tools.(EvidenceTools)
	return et, ok
}

// init adds the evidence tools after the core tools, keeping the offered
// order stable (search tools first, then these).
func init() {
	toolSpecs = append(toolSpecs,
		toolSpec{
			name:               toolListEvidence,
			description:        "List this case's uploaded evidence files with their ids, kinds, sizes and one-line summaries.",
			statuses:           allStatuses,
			schema:             object(map[string]any{}),
			parse:              parseListEvidence,
			needsEvidenceTools: true,
		},
		toolSpec{
			name:        toolReadEvidence,
			description: fmt.Sprintf("Read lines of one evidence file (1-based, inclusive, at most %d lines per call). Use list_evidence or search_evidence first to find the file id and line numbers.", maxReadLines),
			statuses:    allStatuses,
			schema: object(map[string]any{
				"evidence_id": stringProp("The file id from list_evidence or search_evidence."),
				"from_line":   map[string]any{"type": "integer", "minimum": 1, "description": "First line to read."},
				"to_line":     map[string]any{"type": "integer", "minimum": 1, "description": "Last line to read."},
			}, "evidence_id", "from_line", "to_line"),
			parse:              parseReadEvidence,
			needsEvidenceTools: true,
		},
		toolSpec{
			name:               toolEvidenceTimeline,
			description:        "The case timeline: first/last occurrences and bursts found in the evidence, status changes and turns, oldest first.",
			statuses:           allStatuses,
			schema:             object(map[string]any{}),
			parse:              parseEvidenceTimeline,
			needsEvidenceTools: true,
		},
	)
}

type noArgs struct{}

func parseListEvidence(t *turn, raw string) (action, []string) {
	if strings.TrimSpace(raw) == "" {
		raw = "{}"
	}
	var a noArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	return listEvidenceAction{}, nil
}

func parseEvidenceTimeline(t *turn, raw string) (action, []string) {
	if strings.TrimSpace(raw) == "" {
		raw = "{}"
	}
	var a noArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	return timelineAction{}, nil
}

type readArgs struct {
	EvidenceID string `json:"evidence_id"`
	FromLine   *int   `json:"from_line"`
	ToLine     *int   `json:"to_line"`
}

func parseReadEvidence(_ *turn, raw string) (action, []string) {
	var a readArgs
	if p := decodeArgs(raw, &a); p != nil {
		return nil, p
	}
	var problems []string
	required(&problems, "evidence_id", a.EvidenceID)
	if a.FromLine == nil || a.ToLine == nil {
		problems = append(problems, "from_line and to_line are required integers")
	} else {
		switch {
		case *a.FromLine < 1:
			problems = append(problems, "from_line must be at least 1")
		case *a.ToLine < *a.FromLine:
			problems = append(problems, "to_line must not be less than from_line")
		case *a.ToLine-*a.FromLine+1 > maxReadLines:
			problems = append(problems, fmt.Sprintf("read at most %d lines per call", maxReadLines))
		}
	}
	if problems != nil {
		return nil, problems
	}
	return readEvidenceAction{id: strings.TrimSpace(a.EvidenceID), from: *a.FromLine, to: *a.ToLine}, nil
}

type listEvidenceAction struct{}

func (listEvidenceAction) run(ctx context.Context, t *turn) (string, error) {
	et, ok := evidenceTools(t)
	if !ok {
		return "", ErrToolUnavailable
	}
	files, err := et.ListEvidence(ctx)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "No evidence has been uploaded to this case.", nil
	}
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "- %s %s (%s, %d bytes, %d lines): %s\n", f.EvidenceID, attr(f.Filename), f.Kind, f.SizeBytes, f.Lines, oneLine(f.Summary))
	}
	return fmt.Sprintf("%d evidence file(s):\n", len(files)) + dataBlock("evidence-list", sanitizeData(b.String())), nil
}

type readEvidenceAction struct {
	id       string
	from, to int
}

func (a readEvidenceAction) run(ctx context.Context, t *turn) (string, error) {
	et, ok := evidenceTools(t)
	if !ok {
		return "", ErrToolUnavailable
	}
	r, err := et.ReadEvidence(ctx, a.id, a.from, a.to)
	if err != nil {
		return "", err
	}
	head := fmt.Sprintf("Lines %d-%d of %d", r.FromLine, r.ToLine, r.TotalLines)
	if r.Truncated {
		head += " (truncated: read a smaller range for the rest)"
	}
	return head + ":\n" + dataBlock("evidence "+a.id, sanitizeData(r.Text)), nil
}

type timelineAction struct{}

func (timelineAction) run(ctx context.Context, t *turn) (string, error) {
	et, ok := evidenceTools(t)
	if !ok {
		return "", ErrToolUnavailable
	}
	evs, err := et.EvidenceTimeline(ctx)
	if err != nil {
		return "", err
	}
	if len(evs) == 0 {
		return "The timeline is empty.", nil
	}
	omitted := 0
	if len(evs) > maxTimelineItems {
		omitted = len(evs) - maxTimelineItems
		evs = evs[len(evs)-maxTimelineItems:]
	}
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s [%s] %s\n", e.At.UTC().Format(time.RFC3339), e.Source, oneLine(e.Text))
	}
	out := dataBlock("timeline", sanitizeData(b.String()))
	if omitted > 0 {
		out = fmt.Sprintf("(%d older entries omitted)\n", omitted) + out
	}
	return out, nil
}
