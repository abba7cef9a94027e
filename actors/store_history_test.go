package actors

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
	"google.golang.org/protobuf/proto"
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

// BenchmarkTurnHistory is the read a turn does before its agent runs (the
// last 400 messages) and a REST page of messages, on cases of growing
// length with two tool events per turn: through the indexes and by the
// scan of the whole log they replaced.
func BenchmarkTurnHistory(b *testing.B) {
	for _, turns := range []int{25, 250, 2500} {
		st := openTestStore(b, b.TempDir())
		ks, _ := st.Keyspace(persistence.SpaceCase)
		store := &caseStore{ks: ks, snapEvery: 64}
		s := newCaseState()
		now := time.Now()
		ev := s.newEvent(now, "u")
		ev.Kind = &casepb.Event_Created{Created: &casepb.CaseCreated{CaseId: "case_b", Owner: "u", Title: "t"}}
		_ = s.apply(ev)
		if err := store.createCase(s, ev, nil, 0); err != nil {
			b.Fatal(err)
		}
		for turn := 1; turn <= turns; turn++ {
			var evs []*casepb.Event
			add := func(e *casepb.Event) {
				if err := s.apply(e); err != nil {
					b.Fatal(err)
				}
				evs = append(evs, e)
			}
			u := s.newEvent(now, "u")
			u.Kind = &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{Role: "user", ClientMsgId: fmt.Sprint("c", turn),
				Content: fmt.Sprintf("turn %d: the pods restart with OOMKilled since the deploy", turn), TurnNumber: int32(turn)}}
			add(u)
			for range 2 {
				e := s.newEvent(now, "system")
				e.Kind = &casepb.Event_TitleChanged{TitleChanged: &casepb.TitleChanged{Title: fmt.Sprint("t", turn), Source: "auto"}}
				add(e)
			}
			a := s.newEvent(now, "system")
			a.Kind = &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{Role: "assistant", TurnNumber: int32(turn),
				Content: "Check the memory limit of the deployment and the heap profile of the service; paste `kubectl describe pod`."}}
			add(a)
			if err := store.appendEvents(s, evs); err != nil {
				b.Fatal(err)
			}
		}
		cache, err := primeHistory(store, "case_b")
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			fn   func() error
		}{
			{"history/indexed", func() error { _, err := store.recentMessages("case_b", turns+1, historyMessages); return err }},
			{"history/cached", func() error {
				if _, ok := cache.before(turns+1, historyMessages); !ok {
					return errors.New("the history cache cannot answer")
				}
				return nil
			}},
			{"history/scan", func() error { _, err := store.scanRecentMessages("case_b", turns+1, historyMessages); return err }},
			{"page/indexed", func() error { _, _, err := store.messages("case_b", 50, 0); return err }},
			{"page/scan", func() error { _, _, err := store.scanMessages("case_b", 50, 0); return err }},
		} {
			b.Run(fmt.Sprintf("turns=%d/%s", turns, c.name), func(b *testing.B) {
				for b.Loop() {
					if err := c.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		_ = st.Close()
	}
}

// scanRecentMessages is recentMessages as it was before the message index:
// the event log read backwards. It is the oracle of TestIndexesMatchTheLog
// and the baseline of BenchmarkTurnHistory.
func (st *caseStore) scanRecentMessages(id string, beforeTurn, max int) ([]*casepb.MessageAdded, error) {
	var rev []*casepb.MessageAdded
	err := st.ks.ScanRange(eventKey(id, 1), caseKey(id, "e0"), true, func(_, v []byte) error {
		ev := &casepb.Event{}
		if err := proto.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event of case %s: %w", id, err)
		}
		m := ev.GetMessageAdded()
		if m == nil || int(m.GetTurnNumber()) >= beforeTurn {
			return nil
		}
		rev = append(rev, m)
		if len(rev) >= max {
			return persistence.ErrStopScan
		}
		return nil
	})
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev, err
}
