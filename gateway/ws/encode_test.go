package ws

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/faultmaven/faultmaven/actors"
)

func TestAppendFrameMatchesEncodingJSON(t *testing.T) {
	head := uint64(42)
	for _, f := range []actors.Frame{
		{Type: "delta", CaseID: "case_01jabcdefghjkmnpqrstvwxyz0", Turn: 3, Text: "Check the <pod> & \"probe\"\n\t\u2028é\x01"},
		{Type: "delta", CaseID: "c", Turn: 1, Text: "bad utf-8 \xff\xfe here"},
		{Type: "turn_started", CaseID: "c", Turn: 7},
		{Type: "turn_done", CaseID: "c", Turn: 7},
		{Type: "subscribed", CaseID: "c", HeadSeq: &head},
		{Type: "error", CaseID: "c", Code: "CASE_RESTARTED", Message: "the case restarted"},
		{Type: "event", CaseID: "c", Seq: 9, Kind: "message", Data: json.RawMessage(`{"role": "user",  "content":"x"}`)},
		{},
	} {
		want, err := json.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendFrame([]byte("prefix"), &f)
		if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("appendFrame(%+v)\n got %s (%v)\nwant prefix%s", f, got, err, want)
		}
	}
}

// FuzzAppendFrame: frames without data are byte for byte what
// encoding/json writes.
func FuzzAppendFrame(f *testing.F) {
	f.Add("delta", "case_x", 1, "text <&> \u2028 \x00 \xff", "", "", uint64(0))
	f.Add("error", "", 0, "", "CODE", "msg", uint64(3))
	f.Fuzz(func(t *testing.T, typ, caseID string, turn int, text, code, msg string, seq uint64) {
		fr := actors.Frame{Type: typ, CaseID: caseID, Turn: turn, Text: text, Code: code, Message: msg, Seq: seq}
		if seq%2 == 1 {
			fr.HeadSeq = &seq
		}
		want, err := json.Marshal(&fr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendFrame(nil, &fr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendFrame(%+v)\n got %s\nwant %s", fr, got, want)
		}
	})
}

func BenchmarkAppendDelta(b *testing.B) {
	fr := actors.Frame{Type: "delta", CaseID: "case_01jabcdefghjkmnpqrstvwxyz0", Turn: 3, Text: "w1x "}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendFrame(buf[:0], &fr)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&fr)
		}
	})
}
