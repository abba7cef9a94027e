package ws

import "testing"

// The end-to-end WebSocket benchmarks (a turn's ack, an idle connection's
// cost) run through the whole server: gateway/ws_bench_test.go.

func BenchmarkDecodeClientFrame(b *testing.B) {
	frame := []byte(`{"type":"turn","case_id":"case_01m8ajq27nzagcmptjs5fthja4","client_msg_id":"m-123","text":"db-1: no space left on device","attachments":[]}`)
	b.ReportAllocs()
	for range b.N {
		if _, err := decodeClientFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
