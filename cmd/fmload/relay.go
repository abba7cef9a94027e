package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// The floor: `fmload relay`, the least a live-session relay must do. It
// speaks the frames of protocol v1 that the workload uses, acknowledges a
// turn with a counter seq, streams the LLM with a plain net/http request
// and forwards each content delta as it comes. One reader goroutine (which
// also runs the turn's LLM stream; a session has one turn in flight) and
// one writer goroutine per connection, a bounded outbound queue, a write
// deadline per write. REST stubs for register, login and case creation
// keep the client path identical, and /metrics reports the same memory
// gauges as the server.
//
// By default nothing is durable and a turn is acknowledged at once (the
// floor target). With --durable DIR (the floor-durable target) the relay
// keeps a group-committed log in DIR (relaylog.go) and, as the server does,
// acknowledges a turn only once its user message is synced, sends the LLM
// request only once a record of it is synced (the server's egress audit),
// and ends the turn only once its answer, or its failure, is synced too; a
// log error fails the turn.

// relayQueue bounds a connection's outbound frames; a client that lets it
// fill is dropped, as the server drops slow consumers.
const relayQueue = 128

type relay struct {
	llmURL string // base URL ending in "/v1/"
	model  string
	hc     *http.Client
	up     websocket.Upgrader
	cases  atomic.Int64
	log    *durableLog // nil unless --durable

	mu     sync.Mutex
	conns  map[*websocket.Conn]context.CancelFunc
	closed bool           // closeAll ran: no new connection is served
	wg     sync.WaitGroup // connection handlers
}

func newRelay(llmURL, model string) *relay {
	return &relay{
		llmURL: llmURL, model: model,
		hc: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 0, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 90 * time.Second,
		}},
		up: websocket.Upgrader{
			ReadBufferSize: 1024, WriteBufferPool: &sync.Pool{},
			// Only non-browser clients (no Origin) may connect.
			CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "" },
		},
		conns: map[*websocket.Conn]context.CancelFunc{},
	}
}

// runRelay serves until ctx ends; its first output line is a JSON record
// with "msg":"fmload relay serving" and the "addr" it listens on.
func runRelay(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fmload relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	llmURL := fs.String("llm", "", "base URL of the OpenAI-compatible fake, ending in /v1/")
	model := fs.String("model", "fake", "model name sent to the LLM")
	durable := fs.String("durable", "", "keep a group-committed log ("+relayLogName+") in this existing directory; "+
		"ack a turn once its user message is synced, send the LLM request once it is recorded (the floor-durable target)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("relay: unexpected arguments %q", fs.Args())
	case *llmURL == "":
		return errors.New("relay: --llm is required")
	case err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback():
		return fmt.Errorf("relay: --addr %q must be a loopback host:port", *addr)
	}
	r := newRelay(strings.TrimSuffix(*llmURL, "/")+"/", *model)
	if *durable != "" {
		if r.log, err = openDurableLog(*durable); err != nil {
			return err
		}
	}
	err = r.serve(ctx, *addr, stderr)
	return errors.Join(err, r.closeLog())
}

// serve listens on addr and serves until ctx ends, then closes every
// connection and waits for their handlers.
func (r *relay) serve(ctx context.Context, addr string, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r.routes(), ReadHeaderTimeout: 10 * time.Second}
	line, _ := json.Marshal(map[string]string{"level": "info", "msg": "fmload relay serving", "addr": ln.Addr().String()})
	if _, err := fmt.Fprintf(stderr, "%s\n", line); err != nil {
		_ = ln.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // hijacked WebSockets are not covered: close them
	r.closeAll()
	r.wg.Wait()
	<-serveErr
	return nil
}

// closeLog closes the durable log, if there is one. serve has waited for
// the connections by then, so no turn is left to append.
func (r *relay) closeLog() error {
	if r.log == nil {
		return nil
	}
	return r.log.Close()
}

// persist makes rec durable when the relay keeps a log; without one it
// does nothing, as the plain floor promises nothing.
func (r *relay) persist(rec logRecord) error {
	if r.log == nil {
		return nil
	}
	return r.log.Append(rec)
}

func (r *relay) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/register", r.login(http.StatusCreated))
	mux.HandleFunc("POST /api/v1/auth/login", r.login(http.StatusOK))
	mux.HandleFunc("POST /api/v1/cases", r.createCase)
	mux.HandleFunc("GET /api/v1/ws", r.serveWS)
	mux.HandleFunc("GET /metrics", metrics)
	mux.HandleFunc("POST /debug/free-os-memory", procstat.FreeOSMemory)
	return mux
}

// relayToken is the stub access token of a user.
func relayToken(user string) string { return "relay." + user }

func relayUser(token string) (string, bool) { return strings.CutPrefix(token, "relay.") }

func (r *relay) login(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var in struct {
			Username string `json:"username"`
		}
		if json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&in) != nil || in.Username == "" {
			writeJSONStatus(w, http.StatusUnprocessableEntity, map[string]string{"detail": "username is required"})
			return
		}
		writeJSONStatus(w, status, map[string]any{
			"access_token": relayToken(in.Username), "token_type": "bearer", "expires_in": 3600,
			"refresh_token": "unused", "user": map[string]string{"user_id": in.Username, "username": in.Username},
		})
	}
}

func (r *relay) createCase(w http.ResponseWriter, req *http.Request) {
	user, ok := relayUser(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	if !ok {
		writeJSONStatus(w, http.StatusUnauthorized, map[string]string{"detail": "no token"})
		return
	}
	var in struct {
		Title string `json:"title"`
	}
	_ = json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&in)
	id := fmt.Sprintf("case_relay%07d", r.cases.Add(1))
	writeJSONStatus(w, http.StatusCreated, map[string]string{"case_id": id, "title": in.Title, "user_id": user, "state": "inquiry"})
}

// metrics exposes the gauges the harness reads from the server's
// /metrics, in the same text format.
func metrics(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_memstats_stack_inuse_bytes %d\n"+
		"go_memstats_heap_idle_bytes %d\ngo_memstats_heap_released_bytes %d\n",
		m.HeapInuse, m.StackInuse, m.HeapIdle, m.HeapReleased)
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// track registers a connection's handler, so closeAll can end it and
// runRelay wait for it; false once closeAll has run.
func (r *relay) track(c *websocket.Conn, cancel context.CancelFunc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = cancel
	r.wg.Add(1)
	return true
}

func (r *relay) untrack(c *websocket.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
	r.wg.Done()
}

// closeAll ends every connection: its LLM stream and its socket.
func (r *relay) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c, cancel := range r.conns {
		cancel()
		_ = c.Close()
	}
}

// relayConn is one connection. The reader owns everything but out's
// receiving end, which belongs to the writer.
type relayConn struct {
	r      *relay
	ws     *websocket.Conn
	ctx    context.Context // ends when the connection does
	cancel context.CancelFunc
	out    chan []byte
	user   string
	subs   map[string]bool
	seq    map[string]uint64 // per case: the counter acks and events take
	turns  map[string]int
}

func (r *relay) serveWS(w http.ResponseWriter, req *http.Request) {
	user, headerAuth := relayUser(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	ws, err := r.up.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !r.track(ws, cancel) {
		_ = ws.Close()
		return
	}
	defer r.untrack(ws)
	c := &relayConn{r: r, ws: ws, ctx: ctx, cancel: cancel, out: make(chan []byte, relayQueue),
		subs: map[string]bool{}, seq: map[string]uint64{}, turns: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	if headerAuth {
		c.user = user
		c.send(map[string]any{"type": "ready", "protocol": 1, "user_id": user})
	}
	c.readLoop()
	close(c.out)
	<-done
}

func (c *relayConn) writeLoop() {
	defer func() { _ = c.ws.Close() }()
	for b := range c.out {
		_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			c.cancel()
			_ = c.ws.Close() // ends the reader
			for range c.out {
			}
			return
		}
	}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
}

// send queues a frame; a full queue drops the connection.
func (c *relayConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	select {
	case c.out <- b:
	default:
		c.cancel()
		_ = c.ws.Close()
	}
}

func (c *relayConn) sendError(code, msg, ref string) {
	c.send(map[string]string{"type": "error", "code": code, "message": msg, "ref": ref})
}

func (c *relayConn) readLoop() {
	c.ws.SetReadLimit(512 << 10)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			Type        string `json:"type"`
			Token       string `json:"token"`
			CaseID      string `json:"case_id"`
			ClientMsgID string `json:"client_msg_id"`
			Text        string `json:"text"`
		}
		if json.Unmarshal(data, &f) != nil {
			c.sendError("malformed_frame", "a frame is one JSON object", "")
			continue
		}
		if c.user == "" {
			user, ok := relayUser(f.Token)
			if f.Type != "auth" || !ok {
				c.sendError("unauthorized", "authenticate first", "")
				return
			}
			c.user = user
			c.send(map[string]any{"type": "ready", "protocol": 1, "user_id": user})
			continue
		}
		switch f.Type {
		case "ping":
			c.send(map[string]string{"type": "pong"})
		case "subscribe":
			c.subs[f.CaseID] = true
			c.send(map[string]any{"type": "subscribed", "case_id": f.CaseID, "head_seq": c.seq[f.CaseID]})
		case "unsubscribe":
			delete(c.subs, f.CaseID)
		case "turn":
			c.turn(f.CaseID, f.ClientMsgID, f.Text)
		default:
			c.sendError("unknown_type", "unknown frame type", f.CaseID)
		}
	}
}

type relayEvent struct {
	Type   string         `json:"type"`
	CaseID string         `json:"case_id"`
	Seq    uint64         `json:"seq"`
	Kind   string         `json:"kind"`
	Data   map[string]any `json:"data"`
}

type relayDelta struct {
	Type   string `json:"type"`
	CaseID string `json:"case_id"`
	Turn   int    `json:"turn"`
	Text   string `json:"text"`
}

// turn acknowledges once the user message is durable (at once without a
// log), then streams the LLM on this goroutine.
func (c *relayConn) turn(caseID, clientMsgID, text string) {
	seq := c.seq[caseID] + 1
	// The server's ack means the user message is synced; with a log the
	// floor's means the same, and a turn that cannot be stored is refused.
	if err := c.r.persist(logRecord{Kind: recordUser, CaseID: caseID, Seq: seq, Text: text}); err != nil {
		c.sendError("unavailable", err.Error(), clientMsgID)
		return
	}
	c.seq[caseID] = seq
	c.turns[caseID]++
	n := c.turns[caseID]
	c.send(map[string]any{"type": "ack", "client_msg_id": clientMsgID, "case_id": caseID, "seq": seq, "turn": n})
	live := c.subs[caseID]
	if live {
		c.send(relayEvent{Type: "event", CaseID: caseID, Seq: seq, Kind: "message", Data: map[string]any{
			"role": "user", "content": text, "turn_number": n, "created_at": time.Now().UTC()}})
		c.send(map[string]any{"type": "turn_started", "case_id": caseID, "turn": n})
	}
	answer, err := c.stream(caseID, seq, text, func(piece string) {
		if live {
			c.send(relayDelta{Type: "delta", CaseID: caseID, Turn: n, Text: piece})
		}
	})
	c.seq[caseID]++
	c.endTurn(caseID, clientMsgID, n, live, answer, err)
}

// endTurn stores the turn's outcome (the server syncs its answer before
// the turn ends too) and announces it to a subscriber.
func (c *relayConn) endTurn(caseID, clientMsgID string, n int, live bool, answer string, err error) {
	seq := c.seq[caseID]
	rec := logRecord{Kind: recordAnswer, CaseID: caseID, Seq: seq, Text: answer}
	if err != nil {
		rec.Kind, rec.Text = recordFailed, err.Error()
	}
	perr := c.r.persist(rec)
	if perr != nil {
		c.sendError("unavailable", perr.Error(), clientMsgID)
	}
	if !live {
		return
	}
	switch {
	case perr != nil: // no event for an outcome that was not stored
	case err != nil:
		c.send(relayEvent{Type: "event", CaseID: caseID, Seq: seq, Kind: "turn_failed",
			Data: map[string]any{"turn": n, "reason": err.Error(), "client_msg_id": clientMsgID}})
	default:
		c.send(relayEvent{Type: "event", CaseID: caseID, Seq: seq, Kind: "message", Data: map[string]any{
			"role": "assistant", "content": answer, "turn_number": n, "created_at": time.Now().UTC()}})
	}
	c.send(map[string]any{"type": "turn_done", "case_id": caseID, "turn": n})
}

// stream posts one streaming chat completion and hands each content delta
// to onDelta as it arrives; it returns the whole answer. With a log the
// request leaves only once a record of it is durable, as the server's
// egress audit record is (at the turn's user message seq).
func (c *relayConn) stream(caseID string, seq uint64, text string, onDelta func(string)) (string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Minute)
	defer cancel()
	body, _ := json.Marshal(map[string]any{
		"model": c.r.model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": text}},
	})
	if err := c.r.persist(logRecord{Kind: recordRequest, CaseID: caseID, Seq: seq, Text: string(body)}); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.r.llmURL+"chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.r.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("llm: HTTP %d", resp.StatusCode)
	}
	var answer strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 16<<10), 1<<20)
	for sc.Scan() {
		payload, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		if bytes.Equal(payload, []byte("[DONE]")) {
			return answer.String(), nil
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(payload, &chunk); err != nil {
			return "", fmt.Errorf("llm: bad chunk: %w", err)
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Content != "" {
				answer.WriteString(ch.Delta.Content)
				onDelta(ch.Delta.Content)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("llm: stream ended without [DONE]")
}
