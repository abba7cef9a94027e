// Command fakellm is test tooling, not part of the product: it runs the
// fake OpenAI-compatible server of package llmtest as its own process, for
// end-to-end tests and the load harness.
//
//	go run ./cmd/fakellm --addr 127.0.0.1:0 --ttft 300ms --tps 50 --reply-words 60
//
// The first line on stdout is "listening on http://HOST:PORT/v1/". Every
// request is answered with a generated sentence of --reply-words words,
// after --ttft and at --tps tokens (chunks) per second, unless --script
// gives a JSON array of replies to use first (see llmtest.ParseScript).
// Requests containing any --forbid text are answered 400 and recorded as
// violations. GET /_fake/requests and GET /_fake/violations return the
// records as JSON. SIGINT or SIGTERM stops it.
//
// Concurrency: one process serves any number of concurrent requests (see
// llmtest); pacing waits on timers, so a thousand slow streams cost little
// CPU. It keeps at most --keep-requests requests in memory.
//
// Must not: be shipped, imported or started by the product.
package main
