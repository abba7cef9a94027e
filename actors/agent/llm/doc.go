// Package llm is the provider layer of the agent: it streams chat
// completions from OpenAI-compatible servers (OpenAI, Ollama, vLLM, LM
// Studio, ...). Requests go out through github.com/openai/openai-go/v3
// (base URL, auth, retries honouring Retry-After); the request body and the
// streamed reply are encoded and decoded here (request.go, and sse.go,
// chunk.go and stream.go for the server-sent events), because the SDK's
// reflection-based decoding of every chunk was the largest CPU cost of a
// busy server (docs/adr/0004-streaming-hot-path.md).
//
// Shape: OpenAI is one provider (base URL, key, model). Chain is the Client
// the agent uses: a primary provider followed by fallbacks, tried in order.
// A provider that fails before any text reached the caller (HTTP error after
// its retries, connection error, attempt timeout, broken stream) hands over
// to the next one; a failure after text was delivered ends the call, because
// the text cannot be taken back. Every failure is a *ProviderError with a
// short Reason a person can act on ("unauthorized (401): check the API
// key"). ParseFallbacks and LoadConfigFile read provider lists from the
// FM_LLM_FALLBACKS setting and from files.
//
// Time: Config.AttemptTimeout bounds how long one HTTP attempt may make no
// progress (headers, then the gap between chunks); Config.TurnTimeout bounds
// a whole call including retries and fallbacks; the caller's context bounds
// both and its cancellation returns promptly.
//
// Concurrency contract: OpenAI and Chain hold only immutable configuration
// and a shared HTTP client, so one value serves any number of concurrent
// Stream calls. Each call's state lives on its own stack. onDelta is called
// from the goroutine that called Stream, in order, never concurrently and
// never after Stream returns; a slow onDelta stalls the stream (and counts
// against AttemptTimeout). Stream starts no goroutine that outlives it.
//
// Must not: log API keys, message content or model output (logs carry the
// provider name, HTTP status and Reason only), or import anything of the
// agent above it. The fake server in llmtest is for tests only.
package llm
