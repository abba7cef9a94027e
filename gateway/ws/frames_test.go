package ws

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors"
)

func TestDecodeClientFrame(t *testing.T) {
	long := strings.Repeat("a", MaxClientMsgIDLen+1)
	for _, tc := range []struct {
		in, code, ref string
	}{
		{`{"type":"ping"}`, "", ""},
		{`{"type":"ping","extra":{"ignored":true}}`, "", ""},
		{`{"type":"auth","token":"t"}`, "", ""},
		{`{"type":"auth","token":""}`, CodeInvalid, ""},
		{`{"type":"subscribe","case_id":"c","since_seq":7}`, "", ""},
		{`{"type":"subscribe","case_id":"c","since_seq":null}`, "", ""},
		{`{"type":"subscribe","case_id":"c","since_seq":1.5}`, CodeInvalid, "c"},
		{`{"type":"subscribe","case_id":"` + long + `"}`, CodeInvalid, ""},
		{`{"type":"unsubscribe","case_id":"c"}`, "", ""},
		{`{"type":"cancel"}`, CodeInvalid, ""},
		{`{"type":"turn","case_id":"c","client_msg_id":"m","text":"hi","attachments":["f1"]}`, "", ""},
		{`{"type":"turn","case_id":"c","client_msg_id":"m","attachments":["f1"]}`, "", ""},
		{`{"type":"turn","case_id":"c","client_msg_id":"m","text":"  "}`, CodeInvalid, "m"},
		{`{"type":"turn","case_id":"c","client_msg_id":"` + long + `","text":"x"}`, CodeInvalid, "c"},
		{`{"type":"turn","case_id":"c","client_msg_id":"m\u0007","text":"x"}`, CodeInvalid, "c"},
		{`{"type":"turn","case_id":"c","client_msg_id":"m","text":"x","attachments":[""]}`, CodeInvalid, "m"},
		{`{"type":"turn","case_id":"c","client_msg_id":"m","text":"x","attachments":"f1"}`, CodeInvalid, "m"},
		{`{"type":"turn","case_id":"c","client_msg_id":"m","text":7}`, CodeInvalid, "m"},
		{`{"type":7}`, CodeInvalid, ""},
		{`{"type":"Ping"}`, CodeUnknownType, ""},
		{`{}`, CodeInvalid, ""},
		{`null`, CodeMalformed, ""},
		{`"ping"`, CodeMalformed, ""},
		{`{"type":"ping"} {"type":"ping"}`, CodeMalformed, ""},
		{"\xff\xfe", CodeMalformed, ""},
		{``, CodeMalformed, ""},
	} {
		_, err := decodeClientFrame([]byte(tc.in))
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: unexpected %v", tc.in, err)
		case tc.code != "" && (err == nil || err.Code != tc.code || err.Ref != tc.ref || err.Message == ""):
			t.Errorf("%s: got %+v, want %s ref %q", tc.in, err, tc.code, tc.ref)
		}
	}
}

// FuzzDecodeClientFrame: any bytes either decode into a frame of a known
// type with its required fields, or give an error frame; never a panic.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"auth","token":"abc"}`, `{"type":"subscribe","case_id":"case_x","since_seq":3}`,
		`{"type":"turn","case_id":"c","client_msg_id":"m","text":"hi","attachments":["a"]}`,
		`{"type":"cancel","case_id":"c"}`, `{"type":"unsubscribe","case_id":"c"}`, `{"type":"ping"}`,
		`{"type":"turn","case_id":1}`, `[`, `{"type":"\u0000"}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeClientFrame(data)
		if err != nil {
			if err.Code == "" || err.Message == "" || !utf8.ValidString(err.Message) || len(err.Ref) > MaxClientMsgIDLen {
				t.Fatalf("bad error frame %+v", err)
			}
			if _, jerr := json.Marshal(errorFrame{Type: "error", Code: err.Code, Message: err.Message, Ref: err.Ref}); jerr != nil {
				t.Fatal(jerr)
			}
			return
		}
		switch fr.Type {
		case frameAuth:
			if fr.Token == "" {
				t.Fatal("auth without token")
			}
		case framePing:
		case frameSubscribe, frameUnsubscribe, frameCancel:
			if fr.CaseID == "" {
				t.Fatal("no case_id")
			}
		case frameTurn:
			if fr.CaseID == "" || fr.ClientMsgID == "" || len(fr.ClientMsgID) > MaxClientMsgIDLen ||
				len(fr.Attachments) > MaxAttachments || (strings.TrimSpace(fr.Text) == "" && len(fr.Attachments) == 0) {
				t.Fatalf("accepted bad turn %+v", fr)
			}
		default:
			t.Fatalf("accepted unknown type %q", fr.Type)
		}
	})
}

func TestCoalesce(t *testing.T) {
	d := func(c string, turn int, s string) item {
		return item{frame: actors.Frame{Type: "delta", CaseID: c, Turn: turn, Text: s}}
	}
	ev := item{frame: actors.Frame{Type: "event", CaseID: "a", Seq: 9}}
	items := []item{d("a", 1, "he"), d("a", 1, "ll"), d("b", 4, "x"), d("a", 1, "o"), ev, d("a", 1, " w"), d("a", 1, "orld"), d("a", 2, "!")}
	out, merged := coalesce(items)
	var got []string
	for _, it := range out {
		text := it.frame.Text
		if it.more != nil {
			text += it.more.String()
		}
		got = append(got, it.frame.CaseID+":"+it.frame.Type+":"+text)
	}
	want := "a:delta:hello|b:delta:x|a:event:|a:delta: world|a:delta:!"
	if strings.Join(got, "|") != want || merged != 3 {
		t.Fatalf("coalesce: %s (%d merged), want %s (3)", strings.Join(got, "|"), merged, want)
	}
	// One delta alone is written as it is.
	if out, merged := coalesce([]item{d("a", 1, "x")}); len(out) != 1 || merged != 0 || out[0].more != nil {
		t.Fatalf("single delta: %v", out)
	}
}

func TestTokenBucket(t *testing.T) {
	b := tokenBucket{rate: 10, burst: 3}
	now := time.Unix(1000, 0)
	for i := range 3 {
		if !b.allow(now) {
			t.Fatalf("burst frame %d refused", i)
		}
	}
	if b.allow(now) {
		t.Fatal("frame beyond the burst allowed")
	}
	if !b.allow(now.Add(100 * time.Millisecond)) {
		t.Fatal("a token did not come back after 1/rate")
	}
	if b.allow(now.Add(100 * time.Millisecond)) {
		t.Fatal("only one token came back")
	}
	later, allowed := now.Add(time.Hour), 0
	for range 10 {
		if b.allow(later) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("a long pause refilled %d tokens, want the burst of 3", allowed)
	}
}

func TestWSDeliverBoundsTheQueue(t *testing.T) {
	h := &Hub{metrics: testMetrics(), limits: defaultLimits, timing: defaultTiming}
	h.limits.QueueFrames, h.limits.QueueBytes = 4, 1000
	c := newTestConn(h)
	c.subs["a"] = struct{}{}
	ev := actors.Frame{Type: "event", CaseID: "a", Kind: "title"}
	for i := range 3 {
		if !c.Deliver(ev) {
			t.Fatalf("frame %d refused", i)
		}
	}
	// Deltas of one turn waiting in the queue merge into one frame.
	for range 50 {
		if !c.Deliver(actors.Frame{Type: "delta", CaseID: "a", Turn: 1, Text: "xy"}) {
			t.Fatal("a delta that merges was refused")
		}
	}
	if len(c.queue) != 4 || c.queue[3].more == nil || c.queue[3].frame.Text+c.queue[3].more.String() != strings.Repeat("xy", 50) {
		t.Fatalf("queue: %d frames", len(c.queue))
	}
	if !c.Deliver(actors.Frame{Type: "delta", CaseID: "zzz", Turn: 1, Text: "x"}) {
		t.Fatal("a frame of a case not subscribed (any more) is dropped, not a reason to close")
	}
	if c.Deliver(ev) {
		t.Fatal("a fifth frame fit in a queue of four")
	}
	select {
	case <-c.done:
	default:
		t.Fatal("overflow did not close the connection")
	}
	if c.closeCode != CloseSlowConsumer || len(c.queue) != 0 {
		t.Fatalf("close code %d, %d frames kept", c.closeCode, len(c.queue))
	}
	if c.Deliver(ev) {
		t.Fatal("a closing connection accepted a frame")
	}
	// The byte bound holds for merged text too.
	c = newTestConn(h)
	c.subs["a"] = struct{}{}
	ok := true
	for i := 0; i < 100 && ok; i++ {
		ok = c.Deliver(actors.Frame{Type: "delta", CaseID: "a", Turn: 1, Text: strings.Repeat("z", 50)})
	}
	if ok || c.closeCode != CloseSlowConsumer {
		t.Fatal("5000 bytes of deltas fit in a 1000-byte queue")
	}
}

func TestWSDeliverPlacesTheAck(t *testing.T) {
	h := &Hub{metrics: testMetrics(), limits: defaultLimits, timing: defaultTiming}
	c := newTestConn(h)
	c.subs["a"] = struct{}{}
	c.ack = pendingAck{caseID: "a", clientMsgID: "m1"}
	other, _ := json.Marshal(map[string]any{"role": "user", "client_msg_id": "m0", "turn_number": 1})
	mine, _ := json.Marshal(map[string]any{"role": "user", "client_msg_id": "m1", "turn_number": 2})
	c.Deliver(actors.Frame{Type: "event", CaseID: "a", Seq: 5, Kind: "message", Data: other})
	c.Deliver(actors.Frame{Type: "event", CaseID: "a", Seq: 6, Kind: "message", Data: mine})
	c.Deliver(actors.Frame{Type: "turn_started", CaseID: "a", Turn: 2})
	if len(c.queue) != 4 || !c.ack.sent {
		t.Fatalf("queue %+v", c.queue)
	}
	ack, ok := c.queue[1].own.(ackFrame)
	if !ok || ack.Seq != 6 || ack.Turn != 2 || ack.ClientMsgID != "m1" || c.queue[2].frame.Seq != 6 {
		t.Fatalf("the ack must come right before its message: %+v", c.queue)
	}
}

// newTestConn is a connection without a socket whose queue the test reads:
// writing is set as if a writer were busy, so none is started.
func newTestConn(h *Hub) *conn {
	return &conn{hub: h, subs: map[string]struct{}{}, writing: true, done: make(chan struct{})}
}
