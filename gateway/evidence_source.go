package gateway

import (
	"context"
	"strings"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/evidence"
)

// The case actors and the evidence store know nothing of each other
// (persistence's architecture test forbids the import); this package joins
// them. NewEvidenceSource is what cmd/faultmaven hands actors.Deps.

// Bounds on what one turn's prompt receives from Digests. The agent trims
// digests to its own token budget too, but it should not be handed every
// file of a case that has collected dozens.
const (
	maxTurnDigests     = 8
	maxTurnDigestChars = 24_000
)

// evidenceSource adapts *evidence.Store to actors.EvidenceSource.
type evidenceSource struct{ s *evidence.Store }

var _ actors.EvidenceSource = evidenceSource{}

// NewEvidenceSource is the read-only view of the evidence store the case
// actors use for digests in the turn context and for the agent's evidence
// tools.
func NewEvidenceSource(s *evidence.Store) actors.EvidenceSource { return evidenceSource{s: s} }

// Digests returns the newest files' digests, at most maxTurnDigests of
// them and maxTurnDigestChars in all: a digest that does not fit the rest
// of the budget is left out (the agent can still list, read and search the
// file). A file without a digest (images, binaries) is described by its
// summary line.
func (e evidenceSource) Digests(ctx context.Context, caseID string) ([]agent.EvidenceDigest, error) {
	files, err := e.s.Digests(ctx, caseID)
	if err != nil {
		return nil, err
	}
	out := make([]agent.EvidenceDigest, 0, min(len(files), maxTurnDigests))
	room := maxTurnDigestChars
	for _, f := range files {
		if len(out) == maxTurnDigests {
			break
		}
		d := f.Digest
		if d == "" {
			d = f.Filename + ": " + f.Summary
		}
		if len(d) > room {
			continue
		}
		room -= len(d)
		out = append(out, agent.EvidenceDigest{EvidenceID: f.FileID, Filename: f.Filename, Kind: string(f.Kind), Digest: d})
	}
	return out, nil
}

// List describes every file of the case, oldest first.
func (e evidenceSource) List(ctx context.Context, caseID string) ([]agent.EvidenceFile, error) {
	files, err := e.s.List(ctx, caseID)
	if err != nil {
		return nil, err
	}
	out := make([]agent.EvidenceFile, 0, len(files))
	for _, f := range files {
		summary := f.Summary
		if f.DuplicateOf != "" {
			summary += " (same content as " + f.DuplicateOf + ")"
		}
		out = append(out, agent.EvidenceFile{EvidenceID: f.FileID, Filename: f.Filename, Kind: string(f.Kind),
			SizeBytes: f.SizeBytes, Lines: f.Lines, Summary: summary})
	}
	return out, nil
}

// hexRowBytes is how many bytes one line of a hex dump shows.
const hexRowBytes = 16

// Read returns lines of a text file. Images and binary files have no
// lines; for them a "line" is a row of the hex dump (16 bytes), so the
// agent can still look inside with the same tool.
func (e evidenceSource) Read(ctx context.Context, caseID, fileID string, fromLine, toLine int) (agent.EvidenceText, error) {
	f, err := e.s.Get(ctx, caseID, fileID)
	if err != nil {
		return agent.EvidenceText{}, err
	}
	if f.Kind == evidence.KindImage || f.Kind == evidence.KindBinary {
		rows := (f.SizeBytes + hexRowBytes - 1) / hexRowBytes
		from := max(int64(fromLine), 1)
		to := int64(toLine)
		if to <= 0 || to > rows {
			to = rows
		}
		to = max(to, from)
		r, err := e.s.ReadBytes(ctx, caseID, fileID, (from-1)*hexRowBytes, (to-from+1)*hexRowBytes)
		if err != nil {
			return agent.EvidenceText{}, err
		}
		shown := int64(strings.Count(r.Text, "\n"))
		return agent.EvidenceText{Text: r.Text, FromLine: int(from), ToLine: int(from + max(shown-1, 0)),
			TotalLines: rows, Truncated: r.Truncated}, nil
	}
	r, err := e.s.Read(ctx, caseID, fileID, fromLine, toLine)
	if err != nil {
		return agent.EvidenceText{}, err
	}
	return agent.EvidenceText{Text: r.Text, FromLine: r.FromLine, ToLine: r.ToLine, TotalLines: r.TotalLines, Truncated: r.Truncated}, nil
}

// Search finds lines containing query (case-insensitive) in the case's
// text files.
func (e evidenceSource) Search(ctx context.Context, caseID, query string, limit int) ([]agent.EvidenceHit, error) {
	return e.search(ctx, caseID, evidence.SearchQuery{Pattern: strings.TrimSpace(query), Limit: limit})
}

// SearchRegex finds lines matching an RE2 pattern; the store bounds the
// search in time and matches, so a hostile pattern cannot hang a turn.
func (e evidenceSource) SearchRegex(ctx context.Context, caseID, pattern string, limit int) ([]agent.EvidenceHit, error) {
	return e.search(ctx, caseID, evidence.SearchQuery{Pattern: pattern, Regex: true, Limit: limit})
}

func (e evidenceSource) search(ctx context.Context, caseID string, q evidence.SearchQuery) ([]agent.EvidenceHit, error) {
	res, err := e.s.Search(ctx, caseID, q)
	if err != nil {
		return nil, err
	}
	out := make([]agent.EvidenceHit, 0, len(res.Matches))
	for _, m := range res.Matches {
		out = append(out, agent.EvidenceHit{EvidenceID: m.FileID, Filename: m.Filename, Line: int(m.Line), Text: m.Text})
	}
	return out, nil
}

// Timeline lists the dated facts of the case's files, oldest first, each
// naming its file.
func (e evidenceSource) Timeline(ctx context.Context, caseID string) ([]agent.TimelineEvent, error) {
	entries, err := e.s.Timeline(ctx, caseID)
	if err != nil {
		return nil, err
	}
	out := make([]agent.TimelineEvent, 0, len(entries))
	for _, t := range entries {
		out = append(out, agent.TimelineEvent{At: t.At, Source: t.Source, Text: t.Filename + ": " + t.Text})
	}
	return out, nil
}
