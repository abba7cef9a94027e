package actors

import (
	"encoding/json"

	"github.com/faultmaven/faultmaven/actors/casepb"
)

// eventFrame turns a persisted event into its "event" frame. Every event
// gets a frame (unknown kinds as "other") so a client replaying by seq sees
// no gaps.
func eventFrame(caseID string, ev *casepb.Event) Frame {
	kind, data := eventData(ev)
	raw, _ := json.Marshal(data)
	return Frame{Type: "event", CaseID: caseID, Seq: ev.GetSeq(), Kind: kind, Data: raw}
}

type sourceJSON struct {
	DocumentID string `json:"document_id,omitempty"`
	Title      string `json:"title"`
	URL        string `json:"url,omitempty"`
	Snippet    string `json:"snippet,omitempty"`
}

func eventData(ev *casepb.Event) (string, any) {
	at := fromNano(ev.GetAtUnixNano())
	switch k := ev.Kind.(type) {
	case *casepb.Event_Created:
		c := k.Created
		return "created", map[string]any{"title": c.GetTitle(), "description": c.GetDescription(), "priority": c.GetPriority(), "created_at": at}
	case *casepb.Event_MessageAdded:
		m := k.MessageAdded
		srcs := make([]sourceJSON, 0, len(m.GetSources()))
		for _, s := range m.GetSources() {
			srcs = append(srcs, sourceJSON{DocumentID: s.GetDocumentId(), Title: s.GetTitle(), URL: s.GetUrl(), Snippet: s.GetSnippet()})
		}
		return "message", map[string]any{
			"message_id": m.GetMessageId(), "role": m.GetRole(), "content": m.GetContent(),
			"turn_number": m.GetTurnNumber(), "created_at": at, "sources": srcs,
			"client_msg_id": m.GetClientMsgId(),
		}
	case *casepb.Event_StatusChanged:
		c := k.StatusChanged
		return "status", map[string]any{"from": c.GetFrom(), "to": c.GetTo(), "reason": c.GetReason(),
			"closure_reason": c.GetClosureReason(), "by": ev.GetBy(), "at": at}
	case *casepb.Event_TitleChanged:
		return "title", map[string]any{"title": k.TitleChanged.GetTitle(), "source": k.TitleChanged.GetSource()}
	case *casepb.Event_TurnFailed:
		t := k.TurnFailed
		return "turn_failed", map[string]any{"turn": t.GetTurnNumber(), "reason": t.GetReason(), "client_msg_id": t.GetClientMsgId()}
	case *casepb.Event_MilestonesUpdated:
		return "milestones", map[string]any{"completed": nonNil(k.MilestonesUpdated.GetCompleted()), "note": k.MilestonesUpdated.GetNote()}
	case *casepb.Event_HypothesisRecorded:
		h := k.HypothesisRecorded
		return "hypothesis", map[string]any{"hypothesis_id": h.GetHypothesisId(), "statement": h.GetStatement(),
			"category": h.GetCategory(), "confidence": h.GetConfidence(), "status": h.GetStatus()}
	case *casepb.Event_HypothesisEvaluated:
		h := k.HypothesisEvaluated
		return "hypothesis", map[string]any{"hypothesis_id": h.GetHypothesisId(), "status": h.GetStatus(),
			"confidence": h.GetConfidence(), "rationale": h.GetRationale()}
	case *casepb.Event_SolutionProposed:
		x := k.SolutionProposed
		return "solution", map[string]any{"solution_id": x.GetSolutionId(), "kind": x.GetKind(), "description": x.GetDescription()}
	case *casepb.Event_EvidenceAdded:
		x := k.EvidenceAdded
		return "evidence", map[string]any{"evidence_id": x.GetEvidenceId(), "filename": x.GetFilename(), "size": x.GetSize(),
			"source_type": x.GetSourceType(), "upload_source": x.GetUploadSource(), "turn_number": x.GetTurnNumber(), "summary": x.GetSummary()}
	case *casepb.Event_StatusChangeProposed:
		x := k.StatusChangeProposed
		return "status_proposal", map[string]any{"to": x.GetTo(), "reason": x.GetReason()}
	default:
		return "other", map[string]any{}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
