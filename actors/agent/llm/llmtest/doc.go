// Package llmtest is a fake OpenAI-compatible server for tests: it speaks
// POST /v1/chat/completions (server-sent events when "stream":true, plain
// JSON otherwise) and GET /v1/models over real HTTP on loopback, so the real
// openai-go client can be tested against it, and it records every request
// for assertions.
//
// Replies are scripted (Enqueue, SetDefault, SetResponder): content streamed
// in small chunks, tool calls streamed as argument fragments, HTTP errors
// with Retry-After, abrupt disconnects, error events mid-stream, a delay
// before the first chunk and a pace in tokens per second. Forbid turns
// "this text must never reach the LLM" into recorded violations. GET
// /_fake/requests and GET /_fake/violations expose the records as JSON for
// tests that run the fake in another process (cmd/fakellm).
//
// Concurrency contract: a Server serves any number of concurrent requests;
// every method is safe to call from any goroutine while it runs. Each
// request is handled on its own net/http goroutine, which waits on timers
// (never spins) and returns as soon as the client disconnects or Close is
// called; Close waits for all of them. Reply.Match functions run under the
// Server's lock and must not call the Server; a responder runs without it.
//
// Must not: be imported by product code. Only tests and cmd/fakellm use it.
package llmtest
