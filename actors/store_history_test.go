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

// logCase is a case written straight to a caseStore on real Pebble, for
// tests and benchmarks of the store's reads. Events are applied to the
// state as they are made (they take their seq from it) and written when
// committed.
type logCase struct {
	tb    testing.TB
	id    string
	store *caseStore
	s     *caseState
	now   time.Time
}

func newLogCase(tb testing.TB, id string) *logCase {
	tb.Helper()
	st := openTestStore(tb, tb.TempDir())
	tb.Cleanup(func() { _ = st.Close() })
	ks, _ := st.Keyspace(persistence.SpaceCase)
	c := &logCase{tb: tb, id: id, store: &caseStore{ks: ks, snapEvery: 64}, s: newCaseState(), now: time.Now()}
	ev := c.event(&casepb.Event{Kind: &casepb.Event_Created{Created: &casepb.CaseCreated{CaseId: id, Owner: "u", Title: "t"}}})
	if err := c.store.createCase(c.s, ev, nil, 0); err != nil {
		tb.Fatal(err)
	}
	return c
}

// event makes and applies the next event, of the kind of like.
func (c *logCase) event(like *casepb.Event) *casepb.Event {
	c.tb.Helper()
	ev := c.s.newEvent(c.now, "u")
	ev.Kind = like.Kind
	if err := c.s.apply(ev); err != nil {
		c.tb.Fatal(err)
	}
	return ev
}

// message makes and applies a message of turn.
func (c *logCase) message(role string, turn int, text string) *casepb.Event {
	return c.event(&casepb.Event{Kind: &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{Role: role, TurnNumber: int32(turn), Content: text}}})
}

// commit writes evs (made by event or message) in one batch.
func (c *logCase) commit(evs ...*casepb.Event) {
	c.tb.Helper()
	if err := c.store.appendEvents(c.s, evs); err != nil {
		c.tb.Fatal(err)
	}
}

func TestRecentMessagesReadsTheTailInOrder(t *testing.T) {
	c := newLogCase(t, "case_x")
	var evs []*casepb.Event
	for turn := 1; turn <= 30; turn++ {
		for _, role := range []string{"user", "assistant"} {
			evs = append(evs, c.message(role, turn, fmt.Sprintf("%s %d", role, turn)))
		}
	}
	c.commit(evs...)
	got, err := c.store.recentMessages("case_x", 30, 5)
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
		c := newLogCase(b, "case_b")
		for turn := 1; turn <= turns; turn++ {
			evs := []*casepb.Event{c.event(&casepb.Event{Kind: &casepb.Event_MessageAdded{MessageAdded: &casepb.MessageAdded{Role: "user",
				ClientMsgId: fmt.Sprint("c", turn), TurnNumber: int32(turn),
				Content: fmt.Sprintf("turn %d: the pods restart with OOMKilled since the deploy", turn)}}})}
			for range 2 {
				evs = append(evs, c.event(&casepb.Event{Kind: &casepb.Event_TitleChanged{TitleChanged: &casepb.TitleChanged{Title: fmt.Sprint("t", turn), Source: "auto"}}}))
			}
			evs = append(evs, c.message("assistant", turn,
				"Check the memory limit of the deployment and the heap profile of the service; paste `kubectl describe pod`."))
			c.commit(evs...)
		}
		store := c.store
		cache, err := primeHistory(store, "case_b")
		if err != nil {
			b.Fatal(err)
		}
		for _, bc := range []struct {
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
			b.Run(fmt.Sprintf("turns=%d/%s", turns, bc.name), func(b *testing.B) {
				for b.Loop() {
					if err := bc.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
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
