package actors

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
)

// caseState is the folded state of one case. It is a pure value: decide*
// functions turn a command into events without side effects, and apply folds
// an event into the state. The case actor persists the events before it
// applies them (write-ahead), so the state is always what the log says.
type caseState struct {
	snap *casepb.Snapshot
}

// maxClientMsgIDs bounds the dedupe window of client message ids kept in state.
const maxClientMsgIDs = 256

// Closure reasons the extension knows (domain §Case).
var knownClosureReasons = map[string]bool{
	"inquiry_only": true, "solution_deferred": true, "closed_rca_infeasible": true,
	"mitigation_sufficient": true, "closed_insufficient_evidence": true, "other": true,
}

func newCaseState() *caseState { return &caseState{snap: &casepb.Snapshot{}} }

func unixNano(t time.Time) int64 { return t.UTC().UnixNano() }

func fromNano(n int64) time.Time { return time.Unix(0, n).UTC() }

func optTime(n int64) *time.Time {
	if n == 0 {
		return nil
	}
	t := fromNano(n)
	return &t
}

// apply folds one event into the state. Events must come in seq order.
func (s *caseState) apply(ev *casepb.Event) error {
	if ev.GetSeq() != s.snap.Seq+1 {
		return fmt.Errorf("apply event seq %d after %d: out of order", ev.GetSeq(), s.snap.Seq)
	}
	sn := s.snap
	at := ev.GetAtUnixNano()
	switch k := ev.Kind.(type) {
	case *casepb.Event_Created:
		c := k.Created
		sn.CaseId, sn.Owner, sn.Title = c.GetCaseId(), c.GetOwner(), c.GetTitle()
		sn.Description, sn.Priority = c.GetDescription(), c.GetPriority()
		sn.Status = StatusInquiry
		sn.CreatedAtUnixNano = at
		sn.IdempotencyKey = c.GetIdempotencyKey()
		sn.TitleIsPlaceholder = strings.HasPrefix(c.GetTitle(), "Case-")
	case *casepb.Event_StatusChanged:
		c := k.StatusChanged
		sn.History = append(sn.History, &casepb.StatusEntry{
			From: c.GetFrom(), To: c.GetTo(), AtUnixNano: at, By: ev.GetBy(), Reason: c.GetReason(),
		})
		sn.Status = c.GetTo()
		sn.PendingStatus = ""
		switch c.GetTo() {
		case StatusClosed:
			sn.ClosedAtUnixNano = at
			sn.ClosureReason = c.GetClosureReason()
		case StatusResolved:
			sn.ResolvedAtUnixNano = at
		}
	case *casepb.Event_TitleChanged:
		sn.Title = k.TitleChanged.GetTitle()
		sn.TitleIsPlaceholder = false
	case *casepb.Event_MessageAdded:
		m := k.MessageAdded
		sn.Messages++
		if int32(m.GetTurnNumber()) > sn.CurrentTurn {
			sn.CurrentTurn = m.GetTurnNumber()
		}
		if id := m.GetClientMsgId(); id != "" && m.GetRole() == "user" {
			sn.ClientMsgIds = append(sn.ClientMsgIds, id)
			if over := len(sn.ClientMsgIds) - maxClientMsgIDs; over > 0 {
				sn.ClientMsgIds = slices.Delete(sn.ClientMsgIds, 0, over)
			}
		}
		switch m.GetRole() {
		case "user":
			if !slices.Contains(sn.OpenTurns, m.GetTurnNumber()) {
				sn.OpenTurns = append(sn.OpenTurns, m.GetTurnNumber())
			}
		case "assistant":
			sn.OpenTurns = slices.DeleteFunc(sn.OpenTurns, func(t int32) bool { return t == m.GetTurnNumber() })
			sn.PromptTokens += m.GetPromptTokens()
			sn.CompletionTokens += m.GetCompletionTokens()
		}
	case *casepb.Event_TurnFailed:
		// The user message stays; the turn is closed so the client can retry.
		t := k.TurnFailed.GetTurnNumber()
		sn.OpenTurns = slices.DeleteFunc(sn.OpenTurns, func(x int32) bool { return x == t })
	case *casepb.Event_MilestonesUpdated:
		sn.Milestones = slices.Clone(k.MilestonesUpdated.GetCompleted())
	case *casepb.Event_HypothesisRecorded:
		h := k.HypothesisRecorded
		sn.Hypotheses = append(sn.Hypotheses, &casepb.Hypothesis{
			HypothesisId: h.GetHypothesisId(), Statement: h.GetStatement(), Category: h.GetCategory(),
			Confidence: h.GetConfidence(), Status: h.GetStatus(),
		})
	case *casepb.Event_HypothesisEvaluated:
		h := k.HypothesisEvaluated
		for _, x := range sn.Hypotheses {
			if x.HypothesisId == h.GetHypothesisId() {
				x.Status, x.Confidence, x.Rationale = h.GetStatus(), h.GetConfidence(), h.GetRationale()
			}
		}
	case *casepb.Event_SolutionProposed:
		x := k.SolutionProposed
		sn.Solutions = append(sn.Solutions, &casepb.Solution{SolutionId: x.GetSolutionId(), Kind: x.GetKind(), Description: x.GetDescription()})
	case *casepb.Event_EvidenceAdded:
		sn.UploadedFiles++
	case *casepb.Event_StatusChangeProposed:
		sn.PendingStatus = k.StatusChangeProposed.GetTo()
	default:
		// An event type this version does not know: keep the seq moving so
		// newer logs still load (forward compatibility, docs/events.md).
	}
	sn.Seq = ev.GetSeq()
	sn.UpdatedAtUnixNano = at
	return nil
}

// newEvent stamps an event with the next seq.
func (s *caseState) newEvent(now time.Time, by string) *casepb.Event {
	return &casepb.Event{Seq: s.snap.Seq + 1, AtUnixNano: unixNano(now), By: by}
}

func (s *caseState) isTerminal() bool {
	return s.snap.Status == StatusResolved || s.snap.Status == StatusClosed
}

// decideRename validates a user rename.
func (s *caseState) decideRename(title, by string, now time.Time) ([]*casepb.Event, error) {
	title = strings.TrimSpace(title)
	if err := validTitle(title); err != nil {
		return nil, err
	}
	if title == s.snap.Title {
		return nil, nil
	}
	ev := s.newEvent(now, by)
	ev.Kind = &casepb.Event_TitleChanged{TitleChanged: &casepb.TitleChanged{Title: title, Source: "user"}}
	return []*casepb.Event{ev}, nil
}

func validTitle(title string) error {
	if title == "" || len([]rune(title)) > 200 {
		return fmt.Errorf("%w: title must be 1-200 characters", ErrInvalidInput)
	}
	for _, r := range title {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: title must not contain control characters", ErrInvalidInput)
		}
	}
	return nil
}

// decideStatus validates a status transition (domain: inquiry → investigating
// → resolved | closed; inquiry → closed | resolved; terminal states final).
func (s *caseState) decideStatus(to, reason, closure, by string, now time.Time) ([]*casepb.Event, error) {
	from := s.snap.Status
	if !slices.Contains(ValidNextStates(from), to) {
		if s.isTerminal() {
			return nil, fmt.Errorf("%w: case is already %s; %s is a final state", ErrInvalidTransition, from, from)
		}
		return nil, fmt.Errorf("%w: %s → %q is not allowed (allowed: %s)", ErrInvalidTransition,
			from, to, strings.Join(ValidNextStates(from), ", "))
	}
	if len(reason) > 2000 {
		return nil, fmt.Errorf("%w: reason must be at most 2000 characters", ErrInvalidInput)
	}
	if to == StatusClosed {
		if closure == "" {
			closure = defaultClosureReason(from)
		}
		if !knownClosureReasons[closure] {
			return nil, fmt.Errorf("%w: unknown closure_reason %q (allowed: %s)", ErrInvalidInput, closure,
				strings.Join(slices.Sorted(maps.Keys(knownClosureReasons)), ", "))
		}
	} else {
		closure = ""
	}
	ev := s.newEvent(now, by)
	ev.Kind = &casepb.Event_StatusChanged{StatusChanged: &casepb.StatusChanged{
		From: from, To: to, Reason: reason, ClosureReason: closure,
	}}
	return []*casepb.Event{ev}, nil
}

func defaultClosureReason(from string) string {
	if from == StatusInquiry {
		return "inquiry_only"
	}
	return "closed_insufficient_evidence"
}

// row projects the state onto the list/detail row.
func (s *caseState) row() CaseRow {
	sn := s.snap
	r := CaseRow{
		CaseID: sn.CaseId, Title: sn.Title, State: sn.Status, Description: sn.Description,
		Priority: sn.Priority, UserID: sn.Owner, CurrentTurn: int(sn.CurrentTurn),
		CreatedAt: fromNano(sn.CreatedAtUnixNano), UpdatedAt: fromNano(sn.UpdatedAtUnixNano),
		ClosedAt: optTime(sn.ClosedAtUnixNano), ResolvedAt: optTime(sn.ResolvedAtUnixNano),
	}
	if sn.ClosureReason != "" {
		cr := sn.ClosureReason
		r.ClosureReason = &cr
	}
	return r
}

// view is the full read model for /ui.
func (s *caseState) view() CaseView {
	hist := make([]StatusChange, 0, len(s.snap.History))
	for _, h := range s.snap.History {
		hist = append(hist, StatusChange{From: h.From, To: h.To, At: fromNano(h.AtUnixNano), By: h.By, Reason: h.Reason})
	}
	ms := slices.Clone(s.snap.Milestones)
	if ms == nil {
		ms = []string{}
	}
	v := CaseView{Row: s.row(), StatusHistory: hist, Milestones: ms, Seq: s.snap.Seq, UploadedFiles: int(s.snap.UploadedFiles),
		Hypotheses: []HypothesisView{}, Solutions: []SolutionView{}, PendingStatus: s.snap.PendingStatus,
		Tokens: TokenUsage{Prompt: s.snap.PromptTokens, Completion: s.snap.CompletionTokens}}
	for _, h := range s.snap.Hypotheses {
		v.Hypotheses = append(v.Hypotheses, HypothesisView{HypothesisID: h.HypothesisId, Statement: h.Statement,
			Category: h.Category, Status: h.Status, Confidence: h.Confidence, Rationale: h.Rationale})
	}
	for _, x := range s.snap.Solutions {
		v.Solutions = append(v.Solutions, SolutionView{SolutionID: x.SolutionId, Kind: x.Kind, Description: x.Description})
	}
	return v
}
