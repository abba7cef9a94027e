package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody bounds a request body; real prompts are far smaller.
const maxBody = 32 << 20

// Server is a fake OpenAI-compatible HTTP server. Create it with New or
// NewAt and Close it when done.
type Server struct {
	ts        *httptest.Server
	done      chan struct{} // closed by Close: every stream stops
	closeOnce sync.Once
	ids       atomic.Int64
	active    atomic.Int64 // chat requests being answered

	mu         sync.Mutex
	queue      []Reply
	def        Reply
	responder  func(req *ChatRequest) Reply
	requests   []*ChatRequest
	total      int
	keep       int // keep only the last keep requests; 0 keeps all
	forbid     []string
	violations []string
}

// New starts a Server on a random loopback port.
func New() *Server {
	s := newServer()
	s.ts = httptest.NewServer(s.routes())
	return s
}

// NewAt starts a Server listening on addr ("127.0.0.1:0" picks a port).
func NewAt(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("llmtest: listen %s: %w", addr, err)
	}
	s := newServer()
	s.ts = httptest.NewUnstartedServer(s.routes())
	_ = s.ts.Listener.Close() // the loopback listener httptest made for itself
	s.ts.Listener = l
	s.ts.Start()
	return s, nil
}

func newServer() *Server {
	return &Server{done: make(chan struct{}), def: Reply{Content: "ok"}}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /_fake/requests", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Requests())
	})
	mux.HandleFunc("GET /_fake/violations", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Violations())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "no route "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// URL is the API base URL, ending in "/v1/".
func (s *Server) URL() string { return s.ts.URL + "/v1/" }

// Enqueue appends replies to the script; each answers one request (the
// first whose Match accepts it). When no queued reply fits, the default
// answers.
func (s *Server) Enqueue(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, r...)
}

// SetDefault sets the reply used when the script has none left. The
// initial default is Reply{Content: "ok"}.
func (s *Server) SetDefault(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = r
}

// SetResponder makes f answer every request, ahead of the script; nil
// restores the script. f may be called concurrently.
func (s *Server) SetResponder(f func(req *ChatRequest) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responder = f
}

// Forbid adds substrings that must never be sent: a request whose body
// contains one (raw, or in any decoded string) is recorded as a violation
// and answered 400.
func (s *Server) Forbid(substrings ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range substrings {
		if sub != "" {
			s.forbid = append(s.forbid, sub)
		}
	}
}

// Violations lists the forbidden or malformed requests seen so far.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.violations...)
}

// Requests returns the requests received, oldest first (only the last n
// after SetRequestLimit(n)). The values must not be modified.
func (s *Server) Requests() []*ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*ChatRequest{}, s.requests...)
}

// RequestCount is the number of chat requests received, including any that
// SetRequestLimit dropped.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Active is the number of chat requests being answered right now (streams
// in progress included).
func (s *Server) Active() int { return int(s.active.Load()) }

// SetRequestLimit keeps only the last n requests in memory (n <= 0 keeps
// all), for load tests that send many.
func (s *Server) SetRequestLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = max(n, 0)
	s.trim()
}

// Close stops every stream in progress, then shuts the server down and
// waits for its handlers. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.ts.Close()
	})
}

func (s *Server) record(req *ChatRequest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.requests = append(s.requests, req)
	s.trim()
	return s.total
}

func (s *Server) trim() {
	if s.keep > 0 && len(s.requests) > s.keep {
		n := copy(s.requests, s.requests[len(s.requests)-s.keep:])
		clear(s.requests[n:])
		s.requests = s.requests[:n]
	}
}

func (s *Server) violate(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, v)
}

// pick chooses the reply for req: the responder, else the first queued
// reply that matches, else the default.
func (s *Server) pick(req *ChatRequest) Reply {
	s.mu.Lock()
	responder := s.responder
	if responder == nil {
		defer s.mu.Unlock()
		for i, r := range s.queue {
			if r.Match == nil || r.Match(req) {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				return r
			}
		}
		return s.def
	}
	s.mu.Unlock()
	return responder(req)
}

// forbidden returns the first forbidden substring in body, looking at the
// raw bytes and at every decoded string (JSON escapes such as \u003c or \n
// would hide text from a raw search).
func (s *Server) forbidden(body []byte) (string, bool) {
	s.mu.Lock()
	subs := s.forbid
	s.mu.Unlock()
	if len(subs) == 0 {
		return "", false
	}
	var strs []string
	var doc any
	if json.Unmarshal(body, &doc) == nil {
		strs = collectStrings(doc, strs)
	}
	for _, sub := range subs {
		if strings.Contains(string(body), sub) {
			return sub, true
		}
		for _, v := range strs {
			if strings.Contains(v, sub) {
				return sub, true
			}
		}
	}
	return "", false
}

func collectStrings(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, e := range v {
			out = collectStrings(e, out)
		}
	case map[string]any:
		for k, e := range v {
			out = append(out, k)
			out = collectStrings(e, out)
		}
	}
	return out
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away
	}
	received := time.Now()
	if len(body) > maxBody {
		s.violate(fmt.Sprintf("request body larger than %d bytes", maxBody))
		writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request too large")
		return
	}
	req := &ChatRequest{ReceivedAt: received, BodyBytes: len(body)}
	if err := json.Unmarshal(body, req); err != nil {
		s.violate("malformed request body: " + err.Error())
		writeError(w, http.StatusBadRequest, "invalid_request_error", "malformed JSON body")
		return
	}
	n := s.record(req)
	if sub, bad := s.forbidden(body); bad {
		s.violate(fmt.Sprintf("request %d (model %q) contains forbidden text %q", n, req.Model, sub))
		writeError(w, http.StatusBadRequest, "invalid_request_error", "request contains forbidden text")
		return
	}
	if req.Model == "" || len(req.Messages) == 0 {
		s.violate(fmt.Sprintf("request %d has no model or no messages", n))
		writeError(w, http.StatusBadRequest, "invalid_request_error", "model and messages are required")
		return
	}
	reply := s.pick(req)
	if reply.Status != 0 && reply.Status != http.StatusOK {
		c := s.clock(r)
		ok := c.sleep(reply.TTFT)
		c.stop()
		if !ok {
			return
		}
		if reply.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(reply.RetryAfter))
		}
		writeError(w, reply.Status, errorType(reply.Status), errorMessage(reply.Status, req.Model))
		return
	}
	if req.Stream {
		s.stream(w, r, req, reply)
		return
	}
	s.complete(w, r, req, reply)
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   []model{{ID: "fake-model", Object: "model", Created: 1700000000, OwnedBy: "llmtest"}},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": nil}})
}

func errorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

func errorMessage(status int, model string) string {
	switch status {
	case http.StatusUnauthorized:
		return "Incorrect API key provided."
	case http.StatusNotFound:
		return fmt.Sprintf("The model `%s` does not exist.", model)
	case http.StatusTooManyRequests:
		return "Rate limit reached. Please try again later."
	default:
		return http.StatusText(status)
	}
}
