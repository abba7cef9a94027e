package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

// keyPrefix starts the token that ties a turn to its LLM request; the
// rest of the token is [a-z0-9-].
const keyPrefix = "fmload-"

// fakeLLM is the in-process fake LLM both targets stream from. Every
// request gets the same paced reply; the responder notes when the request
// carrying each turn's key arrived.
type fakeLLM struct {
	srv     *llmtest.Server
	pace    pacing
	content string

	untagged  atomic.Int64 // requests without a turn key (the target's own, e.g. titles)
	repeats   atomic.Int64 // further requests for a key already seen (retries, tool rounds)
	requests  atomic.Int64 // requests with a turn key
	bodyBytes atomic.Int64 // and the size of their bodies

	mu       sync.Mutex
	arrivals map[string]arrival
}

// arrival is when a turn's first LLM request reached the fake: received
// is when its body had been read, the end of "turn → LLM request"; replied
// is when the fake had decoded it and began the reply, from which the
// chunks are scheduled. The fake's decoding (in this process, and longer
// for a large prompt than for the floor's one-line request) is between
// the two and counts against neither target.
type arrival struct {
	received, replied time.Time
}

// newFakeLLM starts the fake on a random loopback port.
func newFakeLLM(p pacing) (*fakeLLM, error) {
	srv, err := llmtest.NewAt("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &fakeLLM{srv: srv, pace: p, content: replyText(p.Chunks, p.ChunkChars), arrivals: map[string]arrival{}}
	srv.SetRequestLimit(32) // its own record of requests is not needed; keep it small
	reply := llmtest.Reply{Content: f.content, ChunkChars: p.ChunkChars, TTFT: p.TTFT, TokensPerSec: p.TPS}
	srv.SetResponder(func(req *llmtest.ChatRequest) llmtest.Reply {
		f.arrived(req, time.Now())
		return reply
	})
	return f, nil
}

// URL is the fake's API base URL, ending in "/v1/".
func (f *fakeLLM) URL() string { return f.srv.URL() }

// Close stops every stream and the server.
func (f *fakeLLM) Close() { f.srv.Close() }

func (f *fakeLLM) arrived(req *llmtest.ChatRequest, at time.Time) {
	received := req.ReceivedAt
	if received.IsZero() || received.After(at) {
		received = at
	}
	key := turnKey(req.LastUser())
	for i := len(req.Messages) - 1; key == "" && i >= 0; i-- {
		key = turnKey(req.Messages[i].Content)
	}
	if key == "" {
		f.untagged.Add(1)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, seen := f.arrivals[key]; seen {
		f.repeats.Add(1)
		return
	}
	f.requests.Add(1)
	f.bodyBytes.Add(int64(req.BodyBytes))
	f.arrivals[key] = arrival{received: received, replied: at}
}

// take returns and forgets when key's first request arrived.
func (f *fakeLLM) take(key string) (arrival, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.arrivals[key]
	delete(f.arrivals, key)
	return at, ok
}

// reset forgets every arrival (the keys of turns that never finished).
func (f *fakeLLM) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.arrivals)
	f.requests.Store(0)
	f.bodyBytes.Store(0)
}

// turnKey finds the last turn key in text, or "".
func turnKey(text string) string {
	i := strings.LastIndex(text, keyPrefix)
	if i < 0 {
		return ""
	}
	j := i + len(keyPrefix)
	for j < len(text) && (text[j] >= 'a' && text[j] <= 'z' || text[j] >= '0' && text[j] <= '9' || text[j] == '-') {
		j++
	}
	if j == i+len(keyPrefix) {
		return ""
	}
	return text[i:j]
}

// replyText is chunks chunks of size ASCII characters ("aaa bbb ccc …"),
// so a character offset names its chunk.
func replyText(chunks, size int) string {
	var b strings.Builder
	b.Grow(chunks * size)
	for i := range chunks {
		c := byte('a' + i%26)
		for range size - 1 {
			b.WriteByte(c)
		}
		if size > 1 {
			b.WriteByte(' ')
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
