package actors

import (
	"fmt"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/casepb"
)

// TestHistoryCacheMatchesTheLog: a case's history cache, primed from the
// log at any point and fed every message committed after, hands a turn
// exactly what reading the log gives (recentMessages), or says it cannot:
// with queued turns' user messages ahead of the running turn's answer,
// failed turns without an answer, past its entry bound (trimmed) and past
// its byte bound (switched off).
func TestHistoryCacheMatchesTheLog(t *testing.T) {
	const id = "case_h"
	c := newLogCase(t, id)
	store, msg := c.store, c.message
	var caches []*historyCache // primed at different points, all fed from then on
	commit := func(evs ...*casepb.Event) {
		t.Helper()
		c.commit(evs...)
		rt := &caseRuntime{}
		for _, h := range caches {
			rt.turns = &caseTurns{hist: h}
			rt.noteHistory(evs)
		}
	}
	prime := func() {
		t.Helper()
		h, err := primeHistory(store, id)
		if err != nil {
			t.Fatal(err)
		}
		caches = append(caches, h)
	}
	compare := func(turns int) (checked int) {
		t.Helper()
		for i, h := range caches {
			for n := max(1, turns-3); n <= turns+2; n++ {
				for _, mx := range []int{1, 3, 7, historyMessages, 5000} {
					got, ok := h.before(n, mx)
					if !ok {
						continue
					}
					want, err := store.recentMessages(id, n, mx)
					if err != nil {
						t.Fatal(err)
					}
					if g, w := histText(got), historyText(want); g != w {
						t.Fatalf("cache %d, turn %d, max %d:\n got %s\nwant %s", i, n, mx, g, w)
					}
					checked++
				}
			}
		}
		return checked
	}

	prime() // before any message
	turn, checked := 0, 0
	for round := range 700 {
		turn++
		switch {
		case round%7 == 3: // a failed turn: the user message only
			commit(msg("user", turn, fmt.Sprintf("u%d", turn)))
		case round%5 == 1: // the next turn queued while this one runs
			commit(msg("user", turn, fmt.Sprintf("u%d", turn)))
			commit(msg("user", turn+1, fmt.Sprintf("u%d", turn+1)))
			commit(msg("assistant", turn, fmt.Sprintf("a%d. More text.", turn)))
			turn++
			commit(msg("assistant", turn, fmt.Sprintf("a%d", turn)))
		default:
			commit(msg("user", turn, fmt.Sprintf("u%d", turn)), msg("assistant", turn, fmt.Sprintf("a%d", turn)))
		}
		if round == 10 || round == 333 {
			prime()
		}
		if round%50 == 0 || round > 690 {
			checked += compare(turn)
		}
	}
	if checked < 500 {
		t.Fatalf("only %d comparisons", checked)
	}
	first := caches[0]
	if first.complete || len(first.msgs) > histKeep+historyMessages {
		t.Fatalf("after %d messages the first cache holds %d, complete %v: it should have been trimmed", 2*turn, len(first.msgs), first.complete)
	}
	if _, ok := first.before(turn+1, historyMessages); !ok {
		t.Fatal("a trimmed cache still holding enough messages must answer")
	}

	// Past the byte bound the cache switches off and the log is read.
	commit(msg("user", turn+1, strings.Repeat("x", histMaxBytes)))
	for i, h := range caches {
		if _, ok := h.before(turn+2, historyMessages); ok || !h.off {
			t.Fatalf("cache %d answers after %d bytes of messages", i, histMaxBytes)
		}
	}
}

// histText is historyText (index_test.go) for what the cache hands a turn.
func histText(h []agent.HistoryMessage) string {
	ms := make([]*casepb.MessageAdded, len(h))
	for i, m := range h {
		ms[i] = &casepb.MessageAdded{Role: m.Role, TurnNumber: int32(m.Turn), Content: m.Content}
	}
	return historyText(ms)
}
