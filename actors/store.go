package actors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/persistence"
	"google.golang.org/protobuf/proto"
)

// Key layout inside the "case" keyspace:
//
//	c/<id>/e/<seq:8 BE>    event (casepb.Event)
//	c/<id>/s               latest snapshot (casepb.Snapshot)
//	c/<id>/r               row projection (JSON CaseRow), written with every event
//	o/<owner>/<inv created:8 BE>/<id>   list index, newest first
//	i/<owner>/<idempotency key>         case id of an idempotent create
//	n/<owner>/<YYMMDD>                  placeholder title counter
type caseStore struct {
	ks        *persistence.Keyspace
	snapEvery uint64
}

func caseKey(id, suffix string) []byte { return []byte("c/" + id + "/" + suffix) }

func eventKey(id string, seq uint64) []byte {
	k := caseKey(id, "e/")
	return binary.BigEndian.AppendUint64(k, seq)
}

// Indexes beside a case's log, written in the same batch as the events they
// point to, so reading a message, a turn's outcome or an ack costs a few
// point reads instead of a scan of the whole log:
//
//	c/<id>/m/<seq:8>         → turn:4  every message event
//	c/<id>/t/<turn:4>        → seq:8   the event that ended the turn (answer or turn_failed)
//	c/<id>/k/<client_msg_id> → seq:8   the latest user message with that client_msg_id
//	c/<id>/x                 → "1"     the case has these indexes
//
// Cases written before the indexes existed get them at their next load
// (caseStore.load); until then the readers fall back to scanning the log.
func msgIndexKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(caseKey(id, "m/"), seq)
}

func turnIndexKey(id string, turn int) []byte {
	return binary.BigEndian.AppendUint32(caseKey(id, "t/"), uint32(turn))
}

func ackIndexKey(id, clientMsgID string) []byte { return caseKey(id, "k/"+clientMsgID) }

func indexedKey(id string) []byte { return caseKey(id, "x") }

// stageIndexes adds the index entries of evs to b.
func stageIndexes(b *persistence.Batch, id string, evs []*casepb.Event) error {
	for _, ev := range evs {
		seq := binary.BigEndian.AppendUint64(nil, ev.GetSeq())
		if m := ev.GetMessageAdded(); m != nil {
			if err := b.Set(msgIndexKey(id, ev.GetSeq()), binary.BigEndian.AppendUint32(nil, uint32(m.GetTurnNumber()))); err != nil {
				return err
			}
			switch {
			case m.GetRole() == "user" && m.GetClientMsgId() != "":
				if err := b.Set(ackIndexKey(id, m.GetClientMsgId()), seq); err != nil {
					return err
				}
			case m.GetRole() == "assistant":
				if err := b.Set(turnIndexKey(id, int(m.GetTurnNumber())), seq); err != nil {
					return err
				}
			}
		}
		if f := ev.GetTurnFailed(); f != nil {
			if err := b.Set(turnIndexKey(id, int(f.GetTurnNumber())), seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// indexed reports whether the case's log has its indexes.
func (st *caseStore) indexed(id string) (bool, error) {
	_, err := st.ks.Get(indexedKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// buildIndexes indexes a case written before the indexes existed, in one
// batch with the marker. The batch is not synced: the indexes are derived
// from the log, a crash that loses them loses the marker with them (the
// next load builds them again), and the case's next synced write makes
// them durable, since the log is one ordered file.
func (st *caseStore) buildIndexes(id string) error {
	b := st.ks.NewBatch()
	defer b.Close()
	var chunk []*casepb.Event
	err := st.events(id, func(ev *casepb.Event) error {
		if chunk = append(chunk, ev); len(chunk) == 256 {
			err := stageIndexes(b, id, chunk)
			chunk = chunk[:0]
			return err
		}
		return nil
	})
	if err == nil {
		err = stageIndexes(b, id, chunk)
	}
	if err == nil {
		err = b.Set(indexedKey(id), []byte("1"))
	}
	if err != nil {
		return fmt.Errorf("index case %s: %w", id, err)
	}
	return b.Commit(false)
}

// event reads the event at seq.
func (st *caseStore) event(id string, seq uint64) (*casepb.Event, error) {
	v, err := st.ks.Get(eventKey(id, seq))
	if err != nil {
		return nil, fmt.Errorf("read event %d of case %s: %w", seq, id, err)
	}
	ev := &casepb.Event{}
	if err := proto.Unmarshal(v, ev); err != nil {
		return nil, fmt.Errorf("decode event %d of case %s: %w", seq, id, err)
	}
	return ev, nil
}

// indexedEvent reads the event an index entry (seq:8) points to; nil when
// the entry does not exist.
func (st *caseStore) indexedEvent(id string, key []byte) (*casepb.Event, error) {
	v, err := st.ks.Get(key)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(v) != 8 {
		return nil, fmt.Errorf("case %s: corrupt index entry %q", id, key)
	}
	return st.event(id, binary.BigEndian.Uint64(v))
}

func ownerPrefix(owner string) []byte { return []byte("o/" + owner + "/") }

func ownerKey(owner string, created time.Time, id string) []byte {
	k := ownerPrefix(owner)
	k = binary.BigEndian.AppendUint64(k, math.MaxUint64-uint64(created.UnixNano()))
	return append(append(k, '/'), id...)
}

func idemKey(owner, key string) []byte { return []byte("i/" + owner + "/" + key) }

func counterKey(owner, day string) []byte { return []byte("n/" + owner + "/" + day) }

// createCase writes the first event, row, list index, idempotency entry and
// title counter of a new case in one synced batch.
func (st *caseStore) createCase(s *caseState, ev *casepb.Event, counter []byte, counterVal uint32) error {
	b := st.ks.NewBatch()
	defer b.Close()
	if err := st.stageEvents(b, s, []*casepb.Event{ev}); err != nil {
		return err
	}
	sn := s.snap
	if err := b.Set(indexedKey(sn.CaseId), []byte("1")); err != nil {
		return err
	}
	if err := b.Set(ownerKey(sn.Owner, fromNano(sn.CreatedAtUnixNano), sn.CaseId), nil); err != nil {
		return err
	}
	if sn.IdempotencyKey != "" {
		if err := b.Set(idemKey(sn.Owner, sn.IdempotencyKey), []byte(sn.CaseId)); err != nil {
			return err
		}
	}
	if counter != nil {
		if err := b.Set(counter, binary.BigEndian.AppendUint32(nil, counterVal)); err != nil {
			return err
		}
	}
	return b.Commit(true)
}

// stageEvents adds events (already applied to s) plus the row projection and,
// when a snapshot boundary is crossed, a snapshot to b.
func (st *caseStore) stageEvents(b *persistence.Batch, s *caseState, evs []*casepb.Event) error {
	id := s.snap.CaseId
	if err := stageIndexes(b, id, evs); err != nil {
		return err
	}
	snapNeeded := false
	for _, ev := range evs {
		data, err := proto.Marshal(ev)
		if err != nil {
			return fmt.Errorf("marshal event: %w", err)
		}
		if err := b.Set(eventKey(id, ev.GetSeq()), data); err != nil {
			return err
		}
		if ev.GetSeq()%st.snapEvery == 0 {
			snapNeeded = true
		}
	}
	row, err := json.Marshal(s.row())
	if err != nil {
		return err
	}
	if err := b.Set(caseKey(id, "r"), row); err != nil {
		return err
	}
	if snapNeeded {
		data, err := proto.Marshal(s.snap)
		if err != nil {
			return fmt.Errorf("marshal snapshot: %w", err)
		}
		if err := b.Set(caseKey(id, "s"), data); err != nil {
			return err
		}
	}
	return nil
}

// appendEvents durably appends events that were applied to next.
func (st *caseStore) appendEvents(next *caseState, evs []*casepb.Event) error {
	b := st.ks.NewBatch()
	defer b.Close()
	if err := st.stageEvents(b, next, evs); err != nil {
		return err
	}
	return b.Commit(true)
}

// appendEventsNoWait appends events that were applied to next without
// waiting for them to become durable: the caller must call Wait on the
// result before anything depends on their durability (see
// caseActor.submitTurn).
func (st *caseStore) appendEventsNoWait(next *caseState, evs []*casepb.Event) (*persistence.Pending, error) {
	b := st.ks.NewBatch()
	defer b.Close()
	if err := st.stageEvents(b, next, evs); err != nil {
		return nil, err
	}
	return b.CommitNoWait()
}

// load rebuilds a case from its latest snapshot plus the events after it.
func (st *caseStore) load(id string) (*caseState, error) {
	s := newCaseState()
	data, err := st.ks.Get(caseKey(id, "s"))
	switch {
	case err == nil:
		if err := proto.Unmarshal(data, s.snap); err != nil {
			return nil, fmt.Errorf("load case %s: decode snapshot: %w", id, err)
		}
	case errors.Is(err, persistence.ErrNotFound):
	default:
		return nil, fmt.Errorf("load case %s: %w", id, err)
	}
	from := eventKey(id, s.snap.Seq+1)
	to := caseKey(id, "e0") // '0' sorts right after '/', so this bounds the e/ range
	err = st.ks.ScanRange(from, to, false, func(_, v []byte) error {
		ev := &casepb.Event{}
		if err := proto.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		return s.apply(ev)
	})
	if err != nil {
		return nil, fmt.Errorf("load case %s: %w", id, err)
	}
	if s.snap.Seq == 0 {
		return nil, ErrNotFound
	}
	if ok, err := st.indexed(id); err != nil {
		return nil, fmt.Errorf("load case %s: %w", id, err)
	} else if !ok {
		if err := st.buildIndexes(id); err != nil {
			return nil, fmt.Errorf("load case %s: %w", id, err)
		}
	}
	return s, nil
}

// row reads the row projection without activating the case.
func (st *caseStore) row(id string) (CaseRow, error) {
	data, err := st.ks.Get(caseKey(id, "r"))
	if errors.Is(err, persistence.ErrNotFound) {
		return CaseRow{}, ErrNotFound
	}
	if err != nil {
		return CaseRow{}, err
	}
	var r CaseRow
	if err := json.Unmarshal(data, &r); err != nil {
		return CaseRow{}, fmt.Errorf("decode row of case %s: %w", id, err)
	}
	return r, nil
}

// list returns one page of the owner's cases, newest first, and the total.
func (st *caseStore) list(owner string, limit, offset int) ([]CaseRow, int, error) {
	var ids []string
	total := 0
	p := ownerPrefix(owner)
	err := st.ks.Scan(p, false, func(k, _ []byte) error {
		if total >= offset && len(ids) < limit {
			ids = append(ids, string(k[len(p)+9:]))
		}
		total++
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	rows := make([]CaseRow, 0, len(ids))
	for _, id := range ids {
		r, err := st.row(id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the index scan and the read
		}
		if err != nil {
			return nil, 0, err
		}
		rows = append(rows, r)
	}
	return rows, total, nil
}

// events calls fn for each event of a case in order.
func (st *caseStore) events(id string, fn func(*casepb.Event) error) error {
	return st.ks.ScanRange(eventKey(id, 1), caseKey(id, "e0"), false, func(_, v []byte) error {
		ev := &casepb.Event{}
		if err := proto.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event of case %s: %w", id, err)
		}
		return fn(ev)
	})
}

// messages returns one page of a case's messages in chronological order.
func (st *caseStore) messages(id string, limit, offset int) ([]Message, int, error) {
	ok, err := st.indexed(id)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return st.scanMessages(id, limit, offset)
	}
	var keys [][]byte
	total := 0
	prefix := caseKey(id, "m/")
	err = st.ks.Scan(prefix, false, func(k, _ []byte) error {
		if total >= offset && len(keys) < limit {
			keys = append(keys, eventKey(id, binary.BigEndian.Uint64(k[len(prefix):])))
		}
		total++
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Message, len(keys))
	err = st.eventsAt(id, keys, func(i int, ev *casepb.Event) { out[i] = toMessage(ev) })
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// eventsAt reads the events at keys (ascending event keys of case id)
// through one iterator (persistence.Keyspace.GetSorted).
func (st *caseStore) eventsAt(id string, keys [][]byte, fn func(i int, ev *casepb.Event)) error {
	err := st.ks.GetSorted(keys, func(i int, v []byte) error {
		ev := &casepb.Event{}
		if err := proto.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event of case %s: %w", id, err)
		}
		fn(i, ev)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read events of case %s: %w", id, err)
	}
	return nil
}

func toMessage(ev *casepb.Event) Message {
	m := ev.GetMessageAdded()
	return Message{
		MessageID: m.GetMessageId(), Role: m.GetRole(), Content: m.GetContent(),
		CreatedAt: fromNano(ev.GetAtUnixNano()), TurnNumber: int(m.GetTurnNumber()),
	}
}

// scanMessages is messages for a case not indexed yet.
func (st *caseStore) scanMessages(id string, limit, offset int) ([]Message, int, error) {
	out := []Message{}
	total := 0
	err := st.events(id, func(ev *casepb.Event) error {
		if ev.GetMessageAdded() == nil {
			return nil
		}
		if total >= offset && len(out) < limit {
			out = append(out, toMessage(ev))
		}
		total++
		return nil
	})
	return out, total, err
}

func (st *caseStore) lookupIdem(owner, key string) (string, error) {
	v, err := st.ks.Get(idemKey(owner, key))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

func (st *caseStore) counter(owner, day string) (uint32, error) {
	v, err := st.ks.Get(counterKey(owner, day))
	if errors.Is(err, persistence.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("corrupt title counter for %s", day)
	}
	return binary.BigEndian.Uint32(v), nil
}

// deleteCase removes every key of a case in one synced batch.
func (st *caseStore) deleteCase(r CaseRow, idem string) error {
	b := st.ks.NewBatch()
	defer b.Close()
	if err := b.DeletePrefix(caseKey(r.CaseID, "")); err != nil {
		return err
	}
	if err := b.Delete(ownerKey(r.UserID, r.CreatedAt, r.CaseID)); err != nil {
		return err
	}
	if idem != "" {
		if err := b.Delete(idemKey(r.UserID, idem)); err != nil {
			return err
		}
	}
	return b.Commit(true)
}

var errStopReplay = errors.New("stop replay")

// recentMessages returns up to max messages of turns before beforeTurn,
// oldest first, reading the message index backwards so a turn's cost does
// not grow with the length of the case. Only a loaded case starts turns,
// and loading indexes a case (load), so there is no scanning fallback.
func (st *caseStore) recentMessages(id string, beforeTurn, max int) ([]*casepb.MessageAdded, error) {
	var seqs []uint64
	prefix := caseKey(id, "m/")
	err := st.ks.Scan(prefix, true, func(k, v []byte) error {
		if len(v) != 4 || int(binary.BigEndian.Uint32(v)) >= beforeTurn {
			return nil
		}
		seqs = append(seqs, binary.BigEndian.Uint64(k[len(prefix):]))
		if len(seqs) >= max {
			return persistence.ErrStopScan
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// seqs are newest first; the read goes oldest first, in key order.
	keys := make([][]byte, len(seqs))
	for i, seq := range seqs {
		keys[len(seqs)-1-i] = eventKey(id, seq)
	}
	out := make([]*casepb.MessageAdded, len(seqs))
	err = st.eventsAt(id, keys, func(i int, ev *casepb.Event) { out[i] = ev.GetMessageAdded() })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ksEventsFrom calls fn for each event with seq ≥ from, in order.
func (st *caseStore) ksEventsFrom(id string, from uint64, fn func(*casepb.Event) error) error {
	return st.ks.ScanRange(eventKey(id, from), caseKey(id, "e0"), false, func(_, v []byte) error {
		ev := &casepb.Event{}
		if err := proto.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event of case %s: %w", id, err)
		}
		return fn(ev)
	})
}
