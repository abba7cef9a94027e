package actors

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
)

func newTestState(t *testing.T, status string) *caseState {
	t.Helper()
	s := newCaseState()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ev := s.newEvent(now, "usr_a")
	ev.Kind = &casepb.Event_Created{Created: &casepb.CaseCreated{CaseId: "case_x", Owner: "usr_a", Title: "Case-261125-1"}}
	if err := s.apply(ev); err != nil {
		t.Fatal(err)
	}
	path := map[string][]string{
		StatusInquiry:       nil,
		StatusInvestigating: {StatusInvestigating},
		StatusResolved:      {StatusInvestigating, StatusResolved},
		StatusClosed:        {StatusClosed},
	}[status]
	for _, to := range path {
		evs, err := s.decideStatus(to, "", "", "usr_a", now)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if err := s.apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

func TestDecideStatusTransitions(t *testing.T) {
	all := []string{StatusInquiry, StatusInvestigating, StatusResolved, StatusClosed}
	allowed := map[[2]string]bool{
		{StatusInquiry, StatusInvestigating}:  true,
		{StatusInquiry, StatusResolved}:       true,
		{StatusInquiry, StatusClosed}:         true,
		{StatusInvestigating, StatusResolved}: true,
		{StatusInvestigating, StatusClosed}:   true,
	}
	for _, from := range all {
		for _, to := range append(all, "bogus", "") {
			s := newTestState(t, from)
			histBefore := len(s.snap.History)
			evs, err := s.decideStatus(to, "because", "", "usr_a", time.Now())
			want := allowed[[2]string{from, to}]
			if want && (err != nil || len(evs) != 1) {
				t.Errorf("%s → %q: want allowed, got %v", from, to, err)
			}
			if !want {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Errorf("%s → %q: want ErrInvalidTransition, got %v", from, to, err)
				}
				if len(s.snap.History) != histBefore {
					t.Errorf("%s → %q: history changed on refusal", from, to)
				}
			}
		}
	}
}

func TestApplyStatusStampsClosure(t *testing.T) {
	s := newTestState(t, StatusInvestigating)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	evs, err := s.decideStatus(StatusClosed, "no more data", "", "usr_a", at)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.apply(evs[0]); err != nil {
		t.Fatal(err)
	}
	r := s.row()
	if r.State != StatusClosed || r.ClosedAt == nil || !r.ClosedAt.Equal(at) {
		t.Fatalf("row after close: %+v", r)
	}
	if r.ClosureReason == nil || *r.ClosureReason != "closed_insufficient_evidence" {
		t.Fatalf("closure reason = %v", r.ClosureReason)
	}
	h := s.view().StatusHistory
	if len(h) != 2 || h[1].From != StatusInvestigating || h[1].To != StatusClosed || h[1].Reason != "no more data" || h[1].By != "usr_a" {
		t.Fatalf("history = %+v", h)
	}
}

func TestDecideStatusClosureReasonValidated(t *testing.T) {
	s := newTestState(t, StatusInquiry)
	if _, err := s.decideStatus(StatusClosed, "", "made_up", "u", time.Now()); !errors.Is(err, ErrInvalidInput) ||
		!strings.Contains(err.Error(), "allowed: closed_insufficient_evidence, closed_rca_infeasible, inquiry_only, mitigation_sufficient, other, solution_deferred") {
		t.Fatalf("want ErrInvalidInput naming the allowed reasons, got %v", err)
	}
	evs, err := s.decideStatus(StatusClosed, "", "", "u", time.Now())
	if err != nil || evs[0].GetStatusChanged().GetClosureReason() != "inquiry_only" {
		t.Fatalf("default closure from inquiry: %v %v", evs, err)
	}
}

func TestDecideRename(t *testing.T) {
	s := newTestState(t, StatusInquiry)
	for _, tc := range []struct {
		title string
		ok    bool
	}{
		{"DB latency spike", true},
		{"  padded  ", true},
		{"", false},
		{"   ", false},
		{"bad\x00title", false},
		{string(make([]rune, 201)), false},
	} {
		evs, err := s.decideRename(tc.title, "u", time.Now())
		if tc.ok != (err == nil) {
			t.Errorf("rename %q: err=%v", tc.title, err)
		}
		if tc.ok && (len(evs) != 1 || evs[0].GetTitleChanged().GetSource() != "user") {
			t.Errorf("rename %q: events %v", tc.title, evs)
		}
	}
	if evs, err := s.decideRename(s.snap.Title, "u", time.Now()); err != nil || len(evs) != 0 {
		t.Errorf("same title should be a no-op, got %v %v", evs, err)
	}
}

func TestApplyRejectsOutOfOrder(t *testing.T) {
	s := newTestState(t, StatusInquiry)
	ev := &casepb.Event{Seq: s.snap.Seq + 2, Kind: &casepb.Event_TitleChanged{TitleChanged: &casepb.TitleChanged{Title: "x"}}}
	if err := s.apply(ev); err == nil {
		t.Fatal("want error for a gap in seq")
	}
}

func TestApplyUnknownEventKeepsSeq(t *testing.T) {
	s := newTestState(t, StatusInquiry)
	seq := s.snap.Seq
	if err := s.apply(&casepb.Event{Seq: seq + 1}); err != nil {
		t.Fatal(err)
	}
	if s.snap.Seq != seq+1 {
		t.Fatalf("seq = %d", s.snap.Seq)
	}
}
