package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// testRecord is the record writer w appends as its k-th: the text varies
// in length and holds multi-byte characters, so a record cut or shifted
// does not decode to the expected one.
func testRecord(w, k int) logRecord {
	return logRecord{Kind: recordUser, CaseID: fmt.Sprintf("case_w%02d", w), Seq: uint64(k + 1),
		Text: fmt.Sprintf("writer %d turn %d → %s", w, k, strings.Repeat("é", (w*7+k)%40))}
}

// TestDurableLogGroupCommit appends from many goroutines at once: each
// append must return only once a completed fdatasync covers its record,
// the file must then hold every record exactly once, intact and in each
// writer's order, and the committer must have needed fewer syncs than
// records.
func TestDurableLogGroupCommit(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	l, err := openDurableLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, relayLogName)
	const writers, each = 32, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := range each {
				if err := l.Append(testRecord(w, k)); err != nil {
					t.Errorf("writer %d append %d: %v", w, k, err)
					return
				}
			}
			if err := syncedHolds(l, path, w, each); err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	syncs, durable := l.Syncs(), l.Durable()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}

	recs, err := readRelayLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != writers*each {
		t.Fatalf("%d records, want %d", len(recs), writers*each)
	}
	next := make([]int, writers) // each writer's next k
	for i, rec := range recs {
		var w int
		if _, err := fmt.Sscanf(rec.CaseID, "case_w%02d", &w); err != nil || w < 0 || w >= writers {
			t.Fatalf("record %d: case id %q", i, rec.CaseID)
		}
		if want := testRecord(w, next[w]); rec != want {
			t.Fatalf("record %d = %+v, want %+v (duplicated, lost, reordered or damaged)", i, rec, want)
		}
		next[w]++
	}
	if info, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if info.Size() != durable {
		t.Errorf("file size %d, synced %d bytes", info.Size(), durable)
	}
	t.Logf("%d records in %d fdatasyncs", len(recs), syncs)
	if syncs < 1 || syncs >= writers*each {
		t.Errorf("%d fdatasyncs for %d concurrent records: no group commit", syncs, writers*each)
	}
}

// syncedHolds checks that the part of the log a completed fdatasync
// covers holds writer w's first n records.
func syncedHolds(l *durableLog, path string, w, n int) error {
	synced := l.Durable() // read first: the file only grows past it
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if int64(len(data)) < synced {
		return fmt.Errorf("file has %d bytes, %d synced", len(data), synced)
	}
	recs, err := decodeRelayLog(data[:synced])
	if err != nil {
		return fmt.Errorf("synced part: %w", err)
	}
	found := 0
	for _, rec := range recs {
		if found < n && rec == testRecord(w, found) {
			found++
		}
	}
	if found != n {
		return fmt.Errorf("the synced part holds %d of its %d records, all acknowledged", found, n)
	}
	return nil
}

// TestDurableLogClose closes the log while appends race it: every append
// either succeeded, and its record is in the file, or was refused with
// errLogClosed, and it is not; the committer is gone afterwards.
func TestDurableLogClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	l, err := openDurableLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	accepted := make([]int, writers) // records appended without error, per writer
	started := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := 0; ; k++ {
				err := l.Append(testRecord(w, k))
				if k == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, errLogClosed) {
					return
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				accepted[w]++
			}
		})
	}
	for range writers {
		<-started
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := l.Append(testRecord(0, 1000)); !errors.Is(err, errLogClosed) {
		t.Fatalf("append after close: %v, want errLogClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	recs, err := readRelayLog(filepath.Join(dir, relayLogName))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int, writers)
	for _, rec := range recs {
		var w int
		if _, err := fmt.Sscanf(rec.CaseID, "case_w%02d", &w); err != nil || w >= writers || rec != testRecord(w, got[w]) {
			t.Fatalf("unexpected record %+v", rec)
		}
		got[w]++
	}
	if fmt.Sprint(got) != fmt.Sprint(accepted) {
		t.Fatalf("records per writer in the file %v, accepted %v", got, accepted)
	}
	// A relay never appends to a log it did not create.
	if l2, err := openDurableLog(dir); err == nil {
		_ = l2.Close()
		t.Fatal("openDurableLog reused an existing log")
	}
}

// TestRelayLogReader checks that the reader returns records as written
// and rejects a torn or damaged one.
func TestRelayLogReader(t *testing.T) {
	a := logRecord{Kind: recordUser, CaseID: "case_1", Seq: 1, Text: "disk full on node-3"}
	b := logRecord{Kind: recordAnswer, CaseID: "case_1", Seq: 2, Text: ""}
	data := appendRecord(appendRecord(nil, a), b)
	recs, err := decodeRelayLog(data)
	if err != nil || len(recs) != 2 || recs[0] != a || recs[1] != b {
		t.Fatalf("decode = %+v, %v", recs, err)
	}
	if recs, err := decodeRelayLog(data[:len(data)-1]); err == nil || len(recs) != 1 {
		t.Errorf("a torn last record: %+v, %v; want the first and an error", recs, err)
	}
	bad := append([]byte(nil), data...)
	bad[recordHeader+3] ^= 0x20 // a byte of a's body
	if _, err := decodeRelayLog(bad); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a damaged record: %v, want a checksum error", err)
	}
}

// TestDurableRelayRefusesUnstoredTurn serves a relay whose log is closed:
// a turn it cannot store must be refused with an error frame, not
// acknowledged, and the connection must stay usable.
func TestDurableRelayRefusesUnstoredTurn(t *testing.T) {
	defer goleak.VerifyNone(t)
	r := newRelay("http://127.0.0.1:1/v1/", "fake") // never reached: the turn stops first
	var err error
	if r.log, err = openDurableLog(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := r.log.Close(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.routes())
	defer srv.Close()
	defer func() { r.closeAll(); r.wg.Wait() }()
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/ws",
		http.Header{"Authorization": {"Bearer " + relayToken("alice")}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer func() { _ = ws.Close() }()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	next := func() inFrame {
		t.Helper()
		var f inFrame
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := next(); f.Type != "ready" {
		t.Fatalf("first frame %+v", f)
	}
	for _, out := range []outFrame{
		{Type: "subscribe", CaseID: "case_1"},
		{Type: "turn", CaseID: "case_1", ClientMsgID: "k1", Text: "hello"},
		{Type: "ping"},
	} {
		if err := ws.WriteJSON(out); err != nil {
			t.Fatal(err)
		}
	}
	if f := next(); f.Type != "subscribed" {
		t.Fatalf("after subscribe: %+v", f)
	}
	if f := next(); f.Type != "error" || f.Code != "unavailable" || f.Ref != "k1" || !strings.Contains(f.Message, "closed") {
		t.Fatalf("after an unstorable turn: %+v, want an error frame for k1", f)
	}
	if f := next(); f.Type != "pong" {
		t.Fatalf("after ping: %+v (the turn must not have run)", f)
	}
}
