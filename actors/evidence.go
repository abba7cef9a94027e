package actors

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/casepb"
)

// EvidenceSource is what the case actors need from the evidence module
// (declared here, by the consumer; cmd wires actors/evidence to it). All
// methods are read-only and scoped to one case.
type EvidenceSource interface {
	// Digests returns the LLM digests of the case's files, newest first.
	Digests(ctx context.Context, caseID string) ([]agent.EvidenceDigest, error)
	List(ctx context.Context, caseID string) ([]agent.EvidenceFile, error)
	Read(ctx context.Context, caseID, fileID string, fromLine, toLine int) (agent.EvidenceText, error)
	Search(ctx context.Context, caseID, query string, limit int) ([]agent.EvidenceHit, error)
	// SearchRegex is Search with an RE2 pattern, bounded in time and matches.
	SearchRegex(ctx context.Context, caseID, pattern string, limit int) ([]agent.EvidenceHit, error)
	// Timeline returns what the evidence says happened when, oldest first.
	Timeline(ctx context.Context, caseID string) ([]agent.TimelineEvent, error)
}

// KnowledgeSource searches the knowledge base on behalf of a case's owner
// (declared here, by the consumer; cmd wires the embed module to it). It
// must only return documents the owner may see: global ones, the owner's
// own, and those attached to this case.
type KnowledgeSource interface {
	Search(ctx context.Context, owner, caseID, query string, limit int) ([]agent.Source, error)
}

// EvidenceRef is an uploaded file attached to a turn; its metadata goes into
// the case's event log with the user's message.
type EvidenceRef struct {
	FileID       string
	Filename     string
	SHA256       string
	SizeBytes    int64
	Kind         string
	UploadSource string
	Summary      string
}

func evidenceEvent(s *caseState, now time.Time, by string, turn int, e EvidenceRef) *casepb.Event {
	ev := s.newEvent(now, by)
	ev.Kind = &casepb.Event_EvidenceAdded{EvidenceAdded: &casepb.EvidenceAdded{
		EvidenceId: e.FileID, Filename: e.Filename, Digest: e.SHA256, Size: e.SizeBytes,
		SourceType: e.Kind, UploadSource: e.UploadSource, TurnNumber: int32(turn), Summary: e.Summary,
	}}
	return ev
}

// TimelineEntry is one item of a case's merged timeline.
type TimelineEntry struct {
	At     time.Time `json:"at"`
	Source string    `json:"source"` // evidence | status | turn
	Text   string    `json:"text"`
}

// Timeline merges what the evidence says happened with the case's own
// history (status changes, turns, uploads), oldest first.
func (c *Cases) Timeline(ctx context.Context, owner, caseID string) ([]TimelineEntry, error) {
	if _, err := c.Get(ctx, owner, caseID); err != nil {
		return nil, err
	}
	var out []TimelineEntry
	err := c.d.store.events(caseID, func(ev *casepb.Event) error {
		at := fromNano(ev.GetAtUnixNano())
		switch k := ev.Kind.(type) {
		case *casepb.Event_Created:
			out = append(out, TimelineEntry{At: at, Source: "status", Text: "case opened: " + k.Created.GetTitle()})
		case *casepb.Event_StatusChanged:
			x := k.StatusChanged
			text := "status " + x.GetFrom() + " → " + x.GetTo()
			if x.GetReason() != "" {
				text += ": " + x.GetReason()
			}
			out = append(out, TimelineEntry{At: at, Source: "status", Text: text})
		case *casepb.Event_MessageAdded:
			if m := k.MessageAdded; m.GetRole() == "user" {
				out = append(out, TimelineEntry{At: at, Source: "turn", Text: "turn " + strconv.Itoa(int(m.GetTurnNumber())) + ": " + truncate(m.GetContent(), 120)})
			}
		case *casepb.Event_TurnFailed:
			out = append(out, TimelineEntry{At: at, Source: "turn", Text: "turn " + strconv.Itoa(int(k.TurnFailed.GetTurnNumber())) + " failed: " + k.TurnFailed.GetReason()})
		case *casepb.Event_EvidenceAdded:
			out = append(out, TimelineEntry{At: at, Source: "turn", Text: "evidence uploaded: " + k.EvidenceAdded.GetFilename()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.d.evidence != nil {
		evs, err := c.d.evidence.Timeline(ctx, caseID)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out = append(out, TimelineEntry{At: e.At, Source: e.Source, Text: e.Text})
		}
	}
	slices.SortStableFunc(out, func(a, b TimelineEntry) int { return a.At.Compare(b.At) })
	return out, nil
}
