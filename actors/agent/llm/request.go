package llm

import (
	"bytes"
	"cmp"
	"encoding/json"
)

// The body of a chat completion request, encoded by this package rather
// than through openai-go's request params: the params encoder walks every
// field by reflection and was a visible share of a busy server's CPU (see
// docs/adr/0004-streaming-hot-path.md). The wire format is the same.

type wireRequest struct {
	Model          string              `json:"model"`
	Messages       []wireMessage       `json:"messages"`
	Stream         bool                `json:"stream"`
	StreamOptions  wireStreamOptions   `json:"stream_options"`
	MaxTokens      int                 `json:"max_tokens,omitempty"`
	Temperature    *float64            `json:"temperature,omitempty"`
	Tools          []json.RawMessage   `json:"tools,omitempty"`
	ResponseFormat *wireResponseFormat `json:"response_format,omitempty"`
}

type wireStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type wireMessage struct {
	Role       string         `json:"role"`
	Content    *string        `json:"content,omitempty"` // nil: an assistant message with tool calls only
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type wireToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function wireFunction `json:"function"`
}

type wireFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type wireTool struct {
	Type     string      `json:"type"`
	Function wireToolDef `json:"function"`
}

type wireToolDef struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

type wireResponseFormat struct {
	Type       string         `json:"type"`
	JSONSchema wireJSONSchema `json:"json_schema"`
}

type wireJSONSchema struct {
	Name   string         `json:"name"`
	Schema map[string]any `json:"schema"`
}

// encodeTool is t as a request carries it: compact JSON, HTML characters
// not escaped (like the rest of the body).
func encodeTool(t Tool) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(wireTool{Type: "function",
		Function: wireToolDef{Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeRequest is the streaming request body of req for provider p; req
// must have passed checkRequest. max_tokens rather than
// max_completion_tokens: it is what every OpenAI-compatible server (Ollama,
// vLLM, LM Studio) understands.
func encodeRequest(p *ProviderConfig, req Request) ([]byte, error) {
	w := wireRequest{
		Model:         p.Model,
		Messages:      make([]wireMessage, len(req.Messages)),
		Stream:        true,
		StreamOptions: wireStreamOptions{IncludeUsage: true},
		MaxTokens:     cmp.Or(req.MaxTokens, p.MaxTokens),
		Temperature:   req.Temperature,
	}
	size := 256
	for i := range req.Messages {
		m := &req.Messages[i]
		wm := &w.Messages[i]
		wm.Role, wm.ToolCallID = m.Role, m.ToolCallID
		if m.Role != RoleAssistant || m.Content != "" || len(m.ToolCalls) == 0 {
			wm.Content = &m.Content
		}
		if len(m.ToolCalls) > 0 {
			wm.ToolCalls = make([]wireToolCall, len(m.ToolCalls))
			for j, tc := range m.ToolCalls {
				wm.ToolCalls[j] = wireToolCall{ID: tc.ID, Type: "function",
					Function: wireFunction{Name: tc.Name, Arguments: tc.Arguments}}
				size += len(tc.Arguments) + 64
			}
		}
		size += len(m.Content) + 32
	}
	if len(req.Tools) > 0 {
		w.Tools = make([]json.RawMessage, len(req.Tools))
		for i, t := range req.Tools {
			b := t.wire
			if b == nil {
				var err error
				if b, err = encodeTool(t); err != nil {
					return nil, err
				}
			}
			w.Tools[i] = b
			size += len(b) + 1
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		w.ResponseFormat = &wireResponseFormat{Type: "json_schema",
			JSONSchema: wireJSONSchema{Name: cmp.Or(rf.Name, "response"), Schema: rf.Schema}}
	}
	// The buffer is not pooled: the HTTP client may read it on another
	// goroutine, and again for a retry, until the call returns.
	buf := bytes.NewBuffer(make([]byte, 0, size+size/8))
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		// Only a tool schema holding a value JSON cannot express gets here.
		return nil, err
	}
	return buf.Bytes(), nil
}
