package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DefaultChunkChars is how many characters of content one streamed chunk
// carries when Reply.ChunkChars is unset.
const DefaultChunkChars = 4

// Reply scripts the answer to one chat completion request.
type Reply struct {
	// Content is streamed in chunks of ChunkChars characters.
	Content string
	// ToolCalls are streamed after Content as delta.tool_calls fragments
	// (arguments split into two or more fragments); the finish reason is
	// then "tool_calls".
	ToolCalls []ToolCallReply
	// ChunkChars is the size of a content chunk in characters
	// (default DefaultChunkChars).
	ChunkChars int
	// Status, when neither 0 nor 200, answers with that HTTP status and an
	// OpenAI-style error body.
	Status int
	// RetryAfter, with an error Status, sets the Retry-After header (seconds).
	RetryAfter int
	// DisconnectAfterChunks > 0 closes the connection abruptly (no finish
	// chunk, no [DONE]) after that many content chunks; < 0 closes it right
	// after the headers and the role chunk, before any content.
	DisconnectAfterChunks int
	// StreamError, when set, ends a streamed reply with an error event
	// (data: {"error":{"message":StreamError,...}}) after Content's chunks,
	// instead of tool calls, the finish chunk and [DONE], as servers do when
	// generation fails mid-stream.
	StreamError string
	// TTFT is the delay before the first chunk (or, without streaming,
	// before the response).
	TTFT time.Duration
	// TokensPerSec paces the chunks, one chunk counting as one token;
	// 0 sends them as fast as possible.
	TokensPerSec float64
	// PromptTokens and CompletionTokens are the usage to report; 0 reports
	// rough counts (characters/4 of the prompt, chunks of the answer).
	PromptTokens, CompletionTokens int64
	// Match, if set, restricts a queued Reply to the requests it accepts.
	// It runs under the Server's lock and must not call the Server.
	Match func(req *ChatRequest) bool
}

// ToolCallReply is one scripted tool call.
type ToolCallReply struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ChatRequest is a decoded chat completion request as the server saw it.
type ChatRequest struct {
	Model          string          `json:"model"`
	Messages       []ChatMessage   `json:"messages"`
	Tools          []ChatTool      `json:"tools,omitempty"`
	Stream         bool            `json:"stream,omitempty"`
	StreamOptions  *StreamOptions  `json:"stream_options,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	MaxTokens      *int64          `json:"max_tokens,omitempty"`
	Temperature    *float64        `json:"temperature,omitempty"`

	// ReceivedAt is when the server had read the whole body, before it
	// decoded it (decoding a large prompt takes the fake a while).
	ReceivedAt time.Time `json:"-"`
	// BodyBytes is the size of the request body.
	BodyBytes int `json:"-"`
}

// StreamOptions is the request's stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatMessage is one message of a request. Content given as an array of
// text parts is joined into one string.
type ChatMessage struct {
	Role       string         `json:"role"`
	Content    string         `json:"content"`
	ToolCalls  []ChatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

// ChatToolCall is a tool call of an assistant message.
type ChatToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and its raw JSON arguments.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ChatTool is one tool offered in a request.
type ChatTool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction describes an offered function; Parameters is its raw JSON
// Schema.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// UnmarshalJSON accepts content as a string, null, or an array of parts.
func (m *ChatMessage) UnmarshalJSON(data []byte) error {
	type plain ChatMessage
	var raw struct {
		plain
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = ChatMessage(raw.plain)
	content := bytes.TrimSpace(raw.Content)
	switch {
	case len(content) == 0 || bytes.Equal(content, []byte("null")):
		m.Content = ""
	case content[0] == '"':
		return json.Unmarshal(content, &m.Content)
	case content[0] == '[':
		var parts []struct {
			Type    string `json:"type"`
			Text    string `json:"text"`
			Refusal string `json:"refusal"`
		}
		if err := json.Unmarshal(content, &parts); err != nil {
			return fmt.Errorf("message content: %w", err)
		}
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text + p.Refusal)
		}
		m.Content = b.String()
	default:
		return fmt.Errorf("message content: want a string, null or an array, got %.20s", content)
	}
	return nil
}

// LastUser returns the content of the last user message, or "".
func (r *ChatRequest) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// HasToolResult reports whether the request carries a tool message.
func (r *ChatRequest) HasToolResult() bool {
	for _, m := range r.Messages {
		if m.Role == "tool" {
			return true
		}
	}
	return false
}

// promptTokens is a rough token count: four characters per token.
func (r *ChatRequest) promptTokens() int64 {
	var n int
	for _, m := range r.Messages {
		n += len(m.Content) + 4
		for _, tc := range m.ToolCalls {
			n += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	return int64(n/4 + 1)
}
