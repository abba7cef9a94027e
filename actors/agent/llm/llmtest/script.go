package llmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// scriptReply is the JSON form of a Reply (without Match). Durations are
// strings such as "300ms".
type scriptReply struct {
	Content               string          `json:"content"`
	ToolCalls             []ToolCallReply `json:"tool_calls"`
	ChunkChars            int             `json:"chunk_chars"`
	Status                int             `json:"status"`
	RetryAfter            int             `json:"retry_after"`
	DisconnectAfterChunks int             `json:"disconnect_after_chunks"`
	TTFT                  string          `json:"ttft"`
	TokensPerSec          float64         `json:"tokens_per_sec"`
	PromptTokens          int64           `json:"prompt_tokens"`
	CompletionTokens      int64           `json:"completion_tokens"`
}

// ParseScript reads a JSON array of replies, for example
//
//	[{"content":"hello","ttft":"300ms","tokens_per_sec":50},
//	 {"tool_calls":[{"id":"call_1","name":"search","arguments":"{\"q\":\"x\"}"}]},
//	 {"status":429,"retry_after":1}]
//
// Unknown fields are errors, so a typo cannot silently script nothing.
func ParseScript(data []byte) ([]Reply, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var raw []scriptReply
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("llmtest: script: want a JSON array of replies: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("llmtest: script: unexpected text after the JSON array")
	}
	out := make([]Reply, len(raw))
	for i, r := range raw {
		var ttft time.Duration
		if r.TTFT != "" {
			d, err := time.ParseDuration(r.TTFT)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("llmtest: script reply %d: ttft %q: want a duration such as \"300ms\"", i, r.TTFT)
			}
			ttft = d
		}
		if r.TokensPerSec < 0 || r.ChunkChars < 0 || r.RetryAfter < 0 {
			return nil, fmt.Errorf("llmtest: script reply %d: negative tokens_per_sec, chunk_chars or retry_after", i)
		}
		if r.Status != 0 && (r.Status < 200 || r.Status > 599) {
			return nil, fmt.Errorf("llmtest: script reply %d: status %d is not an HTTP status", i, r.Status)
		}
		out[i] = Reply{
			Content:               r.Content,
			ToolCalls:             r.ToolCalls,
			ChunkChars:            r.ChunkChars,
			Status:                r.Status,
			RetryAfter:            r.RetryAfter,
			DisconnectAfterChunks: r.DisconnectAfterChunks,
			TTFT:                  ttft,
			TokensPerSec:          r.TokensPerSec,
			PromptTokens:          r.PromptTokens,
			CompletionTokens:      r.CompletionTokens,
		}
	}
	return out, nil
}
