package llm

import (
	"context"
	"errors"
	"fmt"
)

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one chat message sent to or received from a model.
type Message struct {
	Role       string
	Content    string
	ToolCalls  []ToolCall // assistant messages that called tools
	ToolCallID string     // tool messages: the call they answer
}

// ToolCall is one function call the model asked for. Arguments is the raw
// JSON text the model produced (it may be invalid: callers validate).
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Tool describes a function the model may call. Parameters is a JSON Schema
// object.
type Tool struct {
	Name        string
	Description string
	Parameters  map[string]any
	// wire is the tool as a request carries it, once PrepareTool encoded it.
	wire []byte
}

// PrepareTool returns t with its request encoding made once, so that every
// request offering it, and WireSize, reuse the bytes instead of walking the
// schema again (the schemas are most of a request's fixed size). Neither
// the returned Tool's Parameters nor t's may change afterwards.
func PrepareTool(t Tool) (Tool, error) {
	b, err := encodeTool(t)
	if err != nil {
		return Tool{}, err
	}
	t.wire = b
	return t, nil
}

// WireSize is the length of t's JSON in a request body (0 if it has none:
// a schema JSON cannot express, which the request would be refused for).
func (t Tool) WireSize() int {
	if t.wire != nil {
		return len(t.wire)
	}
	b, err := encodeTool(t)
	if err != nil {
		return 0
	}
	return len(b)
}

// JSONSchema asks for structured output (used for models without tool
// support): the reply's content must be JSON matching Schema.
type JSONSchema struct {
	Name   string
	Schema map[string]any
}

// Request is one chat completion.
type Request struct {
	Messages       []Message
	Tools          []Tool
	ResponseFormat *JSONSchema
	MaxTokens      int
	Temperature    *float64
}

// Usage counts tokens of one completion.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
}

// Response is a finished completion.
type Response struct {
	Content      string
	ToolCalls    []ToolCall
	FinishReason string // stop | tool_calls | length | content_filter
	Usage        Usage
	Provider     string // name of the provider that answered
	Model        string
}

// Client streams one completion. onDelta receives content fragments in
// order as they arrive (never tool-call fragments); it must not block for
// long. A Client must return when ctx is cancelled.
type Client interface {
	Stream(ctx context.Context, req Request, onDelta func(text string)) (Response, error)
	// SupportsTools reports whether tool calls may be requested; when false
	// callers use ResponseFormat instead.
	SupportsTools() bool
}

// ErrNoProvider means no LLM is configured.
var ErrNoProvider = errors.New("llm: no provider configured")

// ProviderError is a readable failure of one provider.
type ProviderError struct {
	Provider string
	Status   int    // HTTP status, 0 for transport errors and timeouts
	Reason   string // short human text: "rate limited (429)", "timed out after 30s", "stream interrupted"
	Err      error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("llm provider %s: %s", e.Provider, e.Reason)
}

func (e *ProviderError) Unwrap() error { return e.Err }
