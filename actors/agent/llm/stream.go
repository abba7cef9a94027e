package llm

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"strings"
)

// Reading a streamed completion: events (sse.go) are decoded into chunks
// (chunk.go) and folded into a completion here. This replaces openai-go's
// ssestream decoder and ChatCompletionAccumulator on the hot path: they
// decode every chunk by reflection into the SDK's full types, which cost a
// busy server more CPU than everything else in a turn (ADR 0004).

// Bounds of what one reply may address, as openai-go's accumulator has
// them: choice indices 0-127 (only choice 0 is used: requests never ask for
// more), and a tool-call index may leave at most maxToolCallGrowth empty
// places behind it. maxToolCalls bounds the total.
const (
	maxChoiceIndex    = 127
	maxToolCallGrowth = 128
	maxToolCalls      = 1024
)

// completion accumulates the chunks of choice 0.
type completion struct {
	content   strings.Builder
	calls     []callParts
	finish    string
	model     string
	usage     Usage
	gotChoice bool // a chunk carried choice 0
}

// callParts is one tool call being assembled from its fragments.
type callParts struct {
	id   string
	name []byte
	args []byte
}

// add folds c in and reports whether it fit; a chunk that does not fit (an
// index out of bounds) changes nothing.
func (p *completion) add(c *chunk) bool {
	calls := len(p.calls)
	for i := range c.choices {
		ch := &c.choices[i]
		if ch.index < 0 || ch.index > maxChoiceIndex {
			return false
		}
		if ch.index != 0 {
			continue
		}
		for j := range ch.toolCalls {
			k := toolIndex(ch.toolCalls[j].index)
			if k < 0 || k >= maxToolCalls || k-int64(calls) >= maxToolCallGrowth {
				return false
			}
			calls = max(calls, int(k)+1)
		}
	}
	for i := range c.choices {
		ch := &c.choices[i]
		if ch.index != 0 {
			continue
		}
		p.gotChoice = true
		p.content.WriteString(ch.content)
		if ch.finishReason != "" {
			p.finish = ch.finishReason
		}
		for j := range ch.toolCalls {
			tc := &ch.toolCalls[j]
			k := int(toolIndex(tc.index))
			for len(p.calls) <= k {
				p.calls = append(p.calls, callParts{})
			}
			call := &p.calls[k]
			if tc.id != "" {
				call.id = tc.id
			}
			call.name = append(call.name, tc.name...)
			call.args = append(call.args, tc.arguments...)
		}
	}
	if c.model != "" {
		p.model = c.model
	}
	p.usage.PromptTokens += c.promptTokens
	p.usage.CompletionTokens += c.completionTokens
	return true
}

// toolIndex maps -1, which some servers send for a single call, to 0.
func toolIndex(i int64) int64 {
	if i == -1 {
		return 0
	}
	return i
}

// response is the finished completion.
func (p *completion) response(provider, defaultModel string) Response {
	resp := Response{
		Content:      p.content.String(),
		FinishReason: p.finish,
		Usage:        p.usage,
		Provider:     provider,
		Model:        defaultModel,
	}
	if p.model != "" {
		resp.Model = p.model
	}
	if len(p.calls) > 0 {
		resp.ToolCalls = make([]ToolCall, len(p.calls))
		for i, c := range p.calls {
			resp.ToolCalls[i] = ToolCall{ID: c.id, Name: string(c.name), Arguments: string(c.args)}
		}
	}
	return resp
}

// streamOutcome is how reading a stream ended.
type streamOutcome struct {
	err      error  // the body's read error (not io.EOF)
	badJSON  error  // a chunk was not valid JSON
	errEvent string // the server sent an error event, with this message
	badChunk bool   // a chunk did not fit the completion
	chunks   int    // chunks decoded
}

// maxDrain bounds what is read after [DONE] while waiting for the end of
// the response.
const maxDrain = 64 << 10

// readStream reads events from body until [DONE], the end of the body or a
// failure, folding every chunk into p. progress runs for every event (it
// re-arms the stall watchdog); onDelta gets choice 0's content fragments.
//
// After [DONE] it calls drain (which shortens the watchdog) and reads on
// to the end of the response, so that the HTTP client can reuse the
// connection rather than dial a new one for the next request; whatever
// happens then no longer matters.
func readStream(body io.Reader, p *completion, progress, drain func(), onDelta func(string)) streamOutcome {
	var out streamOutcome
	r := newEventReader(body)
	defer r.release()
	var c chunk
	for {
		data, err := r.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				out.err = err
			}
			return out
		}
		progress()
		if bytes.HasPrefix(data, []byte("[DONE]")) {
			drain()
			_, _ = io.CopyN(io.Discard, r.br, maxDrain)
			return out
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // an empty keep-alive event
		}
		if err := c.decode(data); err != nil {
			out.badJSON = err
			return out
		}
		if c.hasError {
			out.errEvent = cmp.Or(c.errMsg, "no message")
			return out
		}
		out.chunks++
		if !p.add(&c) {
			out.badChunk = true
			return out
		}
		if onDelta == nil {
			continue
		}
		for i := range c.choices {
			if ch := &c.choices[i]; ch.index == 0 && ch.content != "" {
				onDelta(ch.content)
			}
		}
	}
}
