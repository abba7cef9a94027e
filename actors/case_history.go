package actors

import (
	"slices"

	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/casepb"
)

// historyCache is an active case's conversation, oldest first, kept by
// the case actor from the first turn of an activation on, so that later
// turns need not read it back from the log (that read was 7–18 % of the
// server's CPU under load). It mirrors the log's message index: every
// committed MessageAdded is appended in log order (a queued turn's user
// message can come before the running turn's answer, as in the log).
//
// It is bounded in entries (the newest histKeep are kept) and in bytes:
// past histMaxBytes it switches itself off and the case reads its log
// each turn, as without it. A turn's snapshot (before) is a new slice,
// so the turn's goroutine never shares the cache's array with appends.
type historyCache struct {
	msgs     []agent.HistoryMessage
	bytes    int
	complete bool // msgs holds every message of the case: nothing trimmed, the priming read was not cut
	off      bool
}

const (
	histKeep     = 2 * historyMessages
	histMaxBytes = 512 << 10
)

// primeHistory builds the cache from the log; it reads the newest
// histKeep messages of the case.
func primeHistory(st *caseStore, id string) (*historyCache, error) {
	msgs, err := st.recentMessages(id, int(^uint32(0)>>1), histKeep)
	if err != nil {
		return nil, err
	}
	h := &historyCache{complete: len(msgs) < histKeep}
	for _, m := range msgs {
		h.add(m)
	}
	return h, nil
}

// add appends one committed message.
func (h *historyCache) add(m *casepb.MessageAdded) {
	if h.off {
		return
	}
	h.msgs = append(h.msgs, historyMessage(m))
	h.bytes += len(m.GetContent())
	if len(h.msgs) >= histKeep+historyMessages {
		drop := len(h.msgs) - histKeep
		for _, d := range h.msgs[:drop] {
			h.bytes -= len(d.Content)
		}
		h.msgs = slices.Clone(h.msgs[drop:])
		h.complete = false
	}
	if h.bytes > histMaxBytes {
		*h = historyCache{off: true}
	}
}

// before returns what recentMessages(id, n, max) reads from the log: the
// newest max messages of turns before n, oldest first. ok is false when
// the cache cannot tell (switched off, or trimmed with fewer than max
// such messages left), and the caller reads the log.
func (h *historyCache) before(n, max int) (out []agent.HistoryMessage, ok bool) {
	if h == nil || h.off {
		return nil, false
	}
	count := 0
	first := len(h.msgs)
	for i := len(h.msgs) - 1; i >= 0 && count < max; i-- {
		if h.msgs[i].Turn < n {
			count++
			first = i
		}
	}
	if count < max && !h.complete {
		return nil, false
	}
	out = make([]agent.HistoryMessage, 0, count)
	for _, m := range h.msgs[first:] {
		if m.Turn < n {
			out = append(out, m)
		}
	}
	return out, true
}

// historyMessage is m as the agent's history holds it.
func historyMessage(m *casepb.MessageAdded) agent.HistoryMessage {
	return agent.HistoryMessage{Role: m.GetRole(), Content: m.GetContent(), Turn: int(m.GetTurnNumber())}
}

// noteHistory adds the committed events' messages to the cache, if the
// case keeps one.
func (rt *caseRuntime) noteHistory(evs []*casepb.Event) {
	if rt.turns == nil || rt.turns.hist == nil {
		return
	}
	for _, ev := range evs {
		if m := ev.GetMessageAdded(); m != nil {
			rt.turns.hist.add(m)
		}
	}
}
