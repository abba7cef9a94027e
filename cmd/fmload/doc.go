// Command fmload is test tooling, not part of the product: a load harness
// for live sessions over the WebSocket protocol (docs/protocol.md). It
// runs the same client workload against up to three targets on loopback
// and reports the server's latencies beside floors measured in the same
// run:
//
//	go run ./cmd/fmload --bin ./bin/faultmaven --sessions 100,250,500,1000 \
//	    --duration 20s --ttft 300ms --tps 50 --reply-tokens 40 \
//	    --targets server,floor,floor-durable --out bench-ws.json
//
// The targets (--targets, any of them; server,floor by default), for each
// session count N:
//
//   - server: a fresh `faultmaven serve` subprocess on 127.0.0.1:0 with its
//     own data directory, pointed at the fake LLM;
//   - floor: `fmload relay`, a subprocess of this binary (relay.go): a
//     minimal, non-durable gorilla/websocket relay that speaks the same
//     frames and streams the same fake LLM, with REST stubs for register,
//     login and case creation so the client path is identical;
//   - floor-durable: the same relay with --durable and a fresh temporary
//     directory (beside the server's, so on the same disk), keeping the
//     server's three durability promises with a group-committed log
//     (relaylog.go): it acks a turn once its user message is fdatasync'ed,
//     sends the LLM request once a record of it is (the server's egress
//     audit), and ends the turn once the answer is.
//
// The server's p99s are held to at most 1.5× the floor's. Its ratios to
// floor-durable are only reported: they show how much of the gap is left
// once the floor pays for durability too.
//
// The fake LLM (package llmtest) runs inside this process. Its responder
// records when each turn's request arrives, keyed by a token the client
// puts in the turn text, and every reply is the same paced stream, so the
// client can tell which LLM chunk a delta frame carries by counting
// characters. Measured per target: turn → durable ack, turn → LLM request,
// LLM chunk → client delta (p50/p99), turns/s, failed turns, RSS per idle
// and per active connection, the target's CPU and this process's own CPU
// (generator and fake together), and what other processes used meanwhile:
// the cores are shared, so before each phase the harness waits (bounded)
// for a quiet machine. After each server run every acknowledged turn must
// be persisted exactly once (checked over REST).
//
// To profile the server under load, set FM_PPROF_ADDR (e.g.
// 127.0.0.1:6060): the server inherits it and serves /debug/pprof/ there,
// and the harness does not mistake that listener for the server's.
//
// Bounds: at most the session counts given (each ≤ maxSessions), a fixed
// active duration, a per-turn timeout and a hard overall deadline after
// which every subprocess is killed and the process exits. Only 127.0.0.1
// is ever listened on or dialled. Subprocesses are killed on every exit
// path, SIGINT included (and get SIGKILL if this process dies).
//
// Concurrency: one goroutine per session both writes its turns and reads
// its frames; small worker pools do the REST setup and the persistence
// check; one sampler goroutine polls /proc during the active phase. Every
// goroutine is waited for before a phase ends.
//
// Must not: be shipped, imported or started by the product, or listen on
// anything but loopback.
package main
