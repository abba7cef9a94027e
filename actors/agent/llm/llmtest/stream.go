package llmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// clock waits for one request: on a single reusable timer, until the
// deadline, the client's disconnect or Server.Close, whichever comes first.
type clock struct {
	timer *time.Timer
	gone  <-chan struct{} // the request's context
	done  <-chan struct{} // the server's Close
}

func (s *Server) clock(r *http.Request) *clock {
	return &clock{gone: r.Context().Done(), done: s.done}
}

// until waits until t; false means the stream must stop.
func (c *clock) until(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-c.gone:
			return false
		case <-c.done:
			return false
		default:
			return true
		}
	}
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.timer.C:
		return true
	case <-c.gone:
	case <-c.done:
	}
	c.timer.Stop()
	return false
}

func (c *clock) sleep(d time.Duration) bool { return c.until(time.Now().Add(d)) }

func (c *clock) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// plan is a Reply cut into the deltas it streams.
type plan struct {
	content [][]byte // content deltas
	tools   [][]byte // tool-call deltas: a header per call, then argument fragments
	finish  string
}

func makePlan(r Reply) plan {
	size := r.ChunkChars
	if size <= 0 {
		size = DefaultChunkChars
	}
	var p plan
	for _, piece := range split(r.Content, size) {
		p.content = append(p.content, []byte(`{"content":`+quote(piece)+`}`))
	}
	for i, tc := range r.ToolCalls {
		p.tools = append(p.tools, []byte(fmt.Sprintf(
			`{"tool_calls":[{"index":%d,"id":%s,"type":"function","function":{"name":%s,"arguments":""}}]}`,
			i, quote(tc.ID), quote(tc.Name))))
		for _, frag := range fragments(tc.Arguments, size) {
			p.tools = append(p.tools, []byte(fmt.Sprintf(
				`{"tool_calls":[{"index":%d,"function":{"arguments":%s}}]}`, i, quote(frag))))
		}
	}
	p.finish = "stop"
	if len(r.ToolCalls) > 0 {
		p.finish = "tool_calls"
	}
	return p
}

// completionTokens is the usage to report for r.
func (p plan) completionTokens(r Reply) int64 {
	if r.CompletionTokens > 0 {
		return r.CompletionTokens
	}
	return int64(len(p.content) + len(p.tools))
}

func promptTokens(r Reply, req *ChatRequest) int64 {
	if r.PromptTokens > 0 {
		return r.PromptTokens
	}
	return req.promptTokens()
}

// split cuts s into pieces of n characters (runes).
func split(s string, n int) []string {
	var out []string
	for s != "" {
		i, count := 0, 0
		for i < len(s) && count < n {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
			count++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// fragments splits tool arguments into at least two pieces when they have
// two characters or more, as real servers do.
func fragments(s string, n int) []string {
	if runes := utf8.RuneCountInString(s); runes >= 2 && runes <= n {
		n = (runes + 1) / 2
	}
	return split(s, n)
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// sse writes chat.completion.chunk events.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	prefix  string // `data: {"id":...,"choices":[`
	suffix  string // what follows the choices array
	usageOn bool
}

func newSSE(w http.ResponseWriter, id, model string, includeUsage bool) *sse {
	e := &sse{
		w:  w,
		rc: http.NewResponseController(w),
		prefix: `data: {"id":` + quote(id) + `,"object":"chat.completion.chunk","created":` +
			strconv.FormatInt(time.Now().Unix(), 10) + `,"model":` + quote(model) +
			`,"system_fingerprint":"fp_llmtest","choices":[`,
		suffix:  "]}\n\n",
		usageOn: includeUsage,
	}
	if includeUsage {
		e.suffix = `],"usage":null}` + "\n\n"
	}
	return e
}

// chunk writes one choice delta; finish "" is sent as null.
func (e *sse) chunk(delta []byte, finish string) bool {
	fr := "null"
	if finish != "" {
		fr = quote(finish)
	}
	return e.send(e.prefix + `{"index":0,"delta":` + string(delta) + `,"logprobs":null,"finish_reason":` + fr + `}` + e.suffix)
}

func (e *sse) usage(prompt, completion int64) bool {
	return e.send(fmt.Sprintf(`%s],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n",
		e.prefix, prompt, completion, prompt+completion))
}

func (e *sse) send(event string) bool {
	if _, err := e.w.Write([]byte(event)); err != nil {
		return false
	}
	return e.rc.Flush() == nil
}

// abort drops the connection without ending the response: the client sees
// an unexpected EOF, as when a proxy or server dies mid-stream.
func abort() { panic(http.ErrAbortHandler) }

func (s *Server) stream(w http.ResponseWriter, r *http.Request, req *ChatRequest, reply Reply) {
	c := s.clock(r)
	defer c.stop()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	e := newSSE(w, s.newID(), req.Model, includeUsage)
	if e.rc.Flush() != nil || !c.sleep(reply.TTFT) {
		return
	}
	p := makePlan(reply)
	if !e.chunk([]byte(`{"role":"assistant","content":""}`), "") {
		return
	}
	if reply.DisconnectAfterChunks < 0 {
		abort()
	}
	var interval time.Duration
	if reply.TokensPerSec > 0 {
		interval = time.Duration(float64(time.Second) / reply.TokensPerSec)
	}
	start, sent := time.Now(), 0
	send := func(delta []byte) bool {
		if sent > 0 && !c.until(start.Add(time.Duration(sent)*interval)) {
			return false
		}
		sent++
		return e.chunk(delta, "")
	}
	for i, d := range p.content {
		if !send(d) {
			return
		}
		if i+1 == reply.DisconnectAfterChunks {
			abort()
		}
	}
	if reply.DisconnectAfterChunks > len(p.content) {
		abort() // fewer chunks than asked for: cut before the finish
	}
	if reply.StreamError != "" {
		e.send(`data: {"error":{"message":` + quote(reply.StreamError) + `,"type":"server_error","code":null}}` + "\n\n")
		return
	}
	for _, d := range p.tools {
		if !send(d) {
			return
		}
	}
	if !e.chunk([]byte(`{}`), p.finish) {
		return
	}
	if includeUsage && !e.usage(promptTokens(reply, req), p.completionTokens(reply)) {
		return
	}
	e.send("data: [DONE]\n\n")
}

// complete answers a request without "stream":true.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, req *ChatRequest, reply Reply) {
	c := s.clock(r)
	defer c.stop()
	if !c.sleep(reply.TTFT) {
		return
	}
	if reply.DisconnectAfterChunks != 0 {
		abort()
	}
	type function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	type toolCall struct {
		ID       string   `json:"id"`
		Type     string   `json:"type"`
		Function function `json:"function"`
	}
	msg := map[string]any{"role": "assistant", "content": reply.Content}
	if len(reply.ToolCalls) > 0 {
		calls := make([]toolCall, len(reply.ToolCalls))
		for i, tc := range reply.ToolCalls {
			calls[i] = toolCall{ID: tc.ID, Type: "function", Function: function{tc.Name, tc.Arguments}}
		}
		msg["tool_calls"] = calls
	}
	p := makePlan(reply)
	prompt, completion := promptTokens(reply, req), p.completionTokens(reply)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":                 s.newID(),
		"object":             "chat.completion",
		"created":            time.Now().Unix(),
		"model":              req.Model,
		"system_fingerprint": "fp_llmtest",
		"choices": []map[string]any{{
			"index": 0, "message": msg, "logprobs": nil, "finish_reason": p.finish,
		}},
		"usage": map[string]int64{
			"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		},
	})
}

func (s *Server) newID() string { return fmt.Sprintf("chatcmpl-fake%06d", s.ids.Add(1)) }
