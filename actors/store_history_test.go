package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
)

func TestRecentMessagesReadsTheTailInOrder(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	defer st.Close()
	ks, _ := st.Keyspace(persistence.SpaceCase)
	store := &caseStore{ks: ks, snapEvery: 64}
	s := newCaseState()
	now := time.Now()
	ev := s.newEvent(now, "u")
	ev.Kind = &casepb.Event_Created{Created: &casepb.CaseCreated{CaseId: "case_x", Owner: "u", Title: "t"}}
	_ = s.apply(ev)
	evs := []*casepb.Event{ev}
	for turn := 1; turn <= 30; turn++ {
		for _, role := range []string{"user", "assistant"} {
			e := s.newEvent(now, "u")
			e.Kind = &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{Role: role, Content: fmt.Sprintf("%s %d", role, turn), TurnNumber: int32(turn)}}
			_ = s.apply(e)
			evs = append(evs, e)
		}
	}
	if err := store.appendEvents(s, evs); err != nil {
		t.Fatal(err)
	}
	got, err := store.recentMessages("case_x", 30, 5)
	if err != nil {
		t.Fatal(err)
	}
	var contents []string
	for _, m := range got {
		contents = append(contents, m.GetContent())
	}
	want := []string{"assistant 27", "user 28", "assistant 28", "user 29", "assistant 29"}
	if fmt.Sprint(contents) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v (the newest messages before turn 30, oldest first)", contents, want)
	}
}
