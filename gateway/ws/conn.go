package ws

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/gateway/auth"
)

// One WebSocket connection: a reader goroutine that decodes client frames
// and calls the case service, a writer goroutine that alone writes data
// frames, and between them a bounded queue. Case actors hand frames to the
// connection through Deliver, a non-blocking enqueue; a queue that
// overflows closes the connection with 4008 and the client resumes with
// since_seq. Nothing here ever blocks a case actor.
//
// The writer runs only while there is something to write: the first frame
// queued starts it and it ends once the queue is empty, so an idle
// connection keeps one goroutine (the reader) and a timer that sends its
// pings. At most one writer runs at a time (conn.writing); the last one
// sends the close frame and closes writerDone.

// item is one queued outbound frame: a case frame, or (own != nil) one
// of the connection's own frames. A delta may carry the text of later
// deltas merged into it (more), so a burst of tokens costs one frame.
type item struct {
	frame actors.Frame
	own   any
	more  *strings.Builder
}

// ownFrameSize is what one of the connection's own frames counts against
// the queue's byte bound.
const ownFrameSize = 128

// frameSize is what a case frame counts against the queue's byte bound.
func frameSize(f *actors.Frame) int { return 96 + len(f.Data) + len(f.Text) }

// joins reports whether delta f may be merged into it.
func (it *item) joins(f *actors.Frame) bool {
	return it.own == nil && it.frame.Type == "delta" && f.Type == "delta" &&
		it.frame.CaseID == f.CaseID && it.frame.Turn == f.Turn
}

// mergeText appends the text of a later delta of the same turn.
func (it *item) mergeText(text string) {
	if it.more == nil {
		it.more = &strings.Builder{}
	}
	it.more.WriteString(text)
}

func (it *item) merge(other item) {
	it.mergeText(other.frame.Text)
	if other.more != nil {
		it.more.WriteString(other.more.String())
	}
}

// pendingAck is the turn the reader is submitting: Deliver writes its ack
// just before the user message event, so the ack precedes every frame of
// the turn (turn_started, deltas) on this connection.
type pendingAck struct {
	caseID, clientMsgID string
	receivedAt          time.Time
	sent                bool
}

// conn is one WebSocket connection and the actors.Subscriber of every
// case it subscribes to. Fields under "Reader-owned" are touched only by
// the reader; those after mu only under it.
type conn struct {
	hub       *Hub
	ws        *websocket.Conn
	requestID string // of the upgrade request
	log       *zap.Logger
	ctx       context.Context
	cancel    context.CancelFunc
	start     time.Time

	// Reader-owned.
	user   auth.Principal
	authed bool
	// expiry closes the connection when the access token it authenticated
	// with expires; a fresh auth frame moves it (reader goroutine only).
	expiry  *time.Timer
	bucket  tokenBucket
	touched map[string]struct{} // cases we called Subscribe for: unsubscribed at the end

	mu         sync.Mutex
	queue      []item
	spare      []item // the writer's last batch, emptied, for the next queue
	queueBytes int
	replaying  bool // a subscribe is replaying history: the larger limits apply
	grace      bool // replay ended; the larger limits apply until the writer takes the queue
	subs       map[string]struct{}
	ack        pendingAck
	closing    bool // no more frames accepted
	aborted    bool // done is closed
	writing    bool // a writer goroutine runs (and, once closing, stays the last one)
	attached   bool // the upgrade is done (ws is set): writers may start
	closeCode  int
	closeText  string
	framesIn   int
	framesOut  int

	ping       *time.Timer   // sends the next ping
	done       chan struct{} // close at once, without flushing
	readerDone chan struct{}
	writerDone chan struct{}
}

func newConn(h *Hub, requestID string) *conn {
	ctx, cancel := context.WithCancel(h.stop)
	lim := h.limits
	return &conn{
		hub: h, requestID: requestID, ctx: ctx, cancel: cancel, start: time.Now(),
		log:        h.log.Named("ws").With(zap.String("request_id", requestID)),
		bucket:     tokenBucket{rate: lim.Rate, burst: lim.Burst},
		touched:    map[string]struct{}{},
		subs:       map[string]struct{}{},
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// Deliver is actors.Subscriber: called on a case actor's goroutine, it
// only queues. It returns false once the connection is closing or when
// the queue overflows, which closes the connection with 4008.
//
// Deltas take the short path and keep this frame small: a case actor runs
// each burst of messages on a fresh goroutine, whose stack would otherwise
// have to grow (a copy) for every delta.
func (c *conn) Deliver(f actors.Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if _, ok := c.subs[f.CaseID]; !ok {
		return true // unsubscribed a moment ago; the actor will hear of it
	}
	switch f.Type {
	case "delta":
		// Coalesce under pressure: a delta the writer has not taken yet
		// absorbs the next one. A client that keeps up never has a delta
		// waiting, so its first token is never held back.
		if q := len(c.queue); q > 0 && c.queue[q-1].joins(&f) {
			if !c.fitsLocked(0, len(f.Text)) {
				return c.overflowLocked()
			}
			c.queue[q-1].mergeText(f.Text)
			c.queueBytes += len(f.Text)
			c.hub.metrics.Coalesced.Inc()
			return true
		}
	case "event":
		if p := c.ack; !p.sent && p.caseID == f.CaseID && f.Kind == "message" {
			return c.eventWithAckLocked(&f)
		}
	case "error":
		return c.caseErrorLocked(&f)
	}
	return c.pushLocked(&f, nil)
}

// eventWithAckLocked queues a message event, preceded by the ack of the
// turn the reader is submitting when the event is that turn's user message.
//
//go:noinline
func (c *conn) eventWithAckLocked(f *actors.Frame) bool {
	p := c.ack
	m, ok := isUserMessage(f.Data, p.clientMsgID)
	if !ok {
		return c.pushLocked(f, nil)
	}
	c.ack.sent = true
	return c.pushLocked(f, ackFrame{Type: "ack", ClientMsgID: p.clientMsgID, CaseID: f.CaseID, Seq: f.Seq, Turn: m.TurnNumber,
		receivedAt: p.receivedAt})
}

// caseErrorLocked queues a case's notice in the connection's error shape.
//
//go:noinline
func (c *conn) caseErrorLocked(f *actors.Frame) bool {
	code := strings.ToLower(f.Code)
	switch f.Code {
	case "CASE_RESTARTED":
		code = CodeCaseRestarted
	case "CASE_DELETED":
		code = CodeCaseDeleted
		delete(c.subs, f.CaseID) // the case has forgotten us too
	}
	return c.pushOwnLocked(errorFrame{Type: "error", Code: code, Message: f.Message, Ref: f.CaseID})
}

// fitsLocked reports whether frames more frames of size bytes fit. An
// empty queue takes anything: one event may be larger than the byte bound
// (a long answer) and must still reach a client that keeps up.
func (c *conn) fitsLocked(frames, size int) bool {
	lim := c.hub.limits
	maxFrames, maxBytes := lim.QueueFrames, lim.QueueBytes
	if c.replaying || c.grace {
		maxFrames, maxBytes = lim.ReplayFrames, lim.ReplayBytes
	}
	if len(c.queue)+frames > maxFrames {
		return false
	}
	return len(c.queue) == 0 || c.queueBytes+size <= maxBytes
}

// overflowLocked drops the queue and closes the connection as a slow
// consumer; the client resumes with since_seq.
func (c *conn) overflowLocked() bool {
	c.hub.metrics.SlowCloses.Inc()
	c.abortLocked(CloseSlowConsumer, "slow consumer")
	return false
}

// pushLocked queues case frame f, preceded by the connection's own frame
// before when it is not nil, within the limits; on overflow it drops the
// queue and closes the connection as a slow consumer.
func (c *conn) pushLocked(f *actors.Frame, before any) bool {
	frames, size := 1, frameSize(f)
	if before != nil {
		frames, size = 2, size+ownFrameSize
	}
	if !c.fitsLocked(frames, size) {
		return c.overflowLocked()
	}
	if before != nil {
		c.newItemLocked().own = before
	}
	c.newItemLocked().frame = *f
	c.queueBytes += size
	c.signal()
	return true
}

// newItemLocked appends an empty item to the queue and returns it (filled
// in place: an item temporary would add its size to the caller's frame).
func (c *conn) newItemLocked() *item {
	c.queue = append(c.queue, item{})
	return &c.queue[len(c.queue)-1]
}

// pushOwnLocked queues one of the connection's own frames.
func (c *conn) pushOwnLocked(v any) bool {
	if !c.fitsLocked(1, ownFrameSize) {
		return c.overflowLocked()
	}
	c.newItemLocked().own = v
	c.queueBytes += ownFrameSize
	c.signal()
	return true
}

// send queues one of the connection's own frames. Control answers are
// subject to the same bound as case frames.
func (c *conn) send(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.pushOwnLocked(v)
	}
}

func (c *conn) sendError(e *frameError) {
	c.send(errorFrame{Type: "error", Code: e.Code, Message: e.Message, Ref: e.Ref})
}

// signal makes sure a writer runs to take what was queued. Before the
// upgrade there is no socket to write to: the close or frames wait for
// attached, which signals again.
func (c *conn) signal() {
	if c.attached && !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// markAttached marks the upgrade done and starts a writer for anything that
// came meanwhile: a logout's or a shutdown's close during the handshake.
func (c *conn) markAttached() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attached = true
	if len(c.queue) > 0 || c.closing {
		c.signal()
	}
}

// closeNow starts closing without writing what is queued: shutdown, slow
// consumers, broken connections.
func (c *conn) closeNow(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.abortLocked(code, text)
}

func (c *conn) abortLocked(code int, text string) {
	if c.aborted {
		return
	}
	c.aborted, c.closing = true, true
	if c.closeCode == 0 {
		c.closeCode, c.closeText = code, text
	}
	c.queue, c.queueBytes = nil, 0
	close(c.done)
	c.signal() // the writer sends the close frame
}

// closeAfter queues last (if any), lets the writer flush the queue, then
// close with code: refusals the client must be able to read.
func (c *conn) closeAfter(code int, text string, last any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	c.closeCode, c.closeText = code, text
	if last != nil {
		c.queue = append(c.queue, item{own: last})
	}
	c.signal()
}

// take hands the writer everything queued; closing reports that nothing
// more will come. With nothing queued and the connection open it ends the
// writer's turn (park): the next frame queued starts a new writer.
func (c *conn) take() (items []item, closing, park bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 && !c.closing {
		c.writing = false
		return nil, false, true
	}
	items, c.queue, c.queueBytes = c.queue, c.spare, 0
	c.spare = nil
	c.grace = false
	return items, c.closing, false
}

// recycle keeps a written batch's array for a later queue, so a streaming
// connection does not regrow its queue for every burst.
func (c *conn) recycle(items []item) {
	if cap(items) > maxRecycledQueue {
		return
	}
	clear(items[:cap(items)])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spare == nil && !c.closing {
		c.spare = items[:0]
	}
}

// maxRecycledQueue bounds the queue array a connection keeps between
// bursts (a replay's large queue is let go).
const maxRecycledQueue = 64

func (c *conn) isAborted() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// writeLoop is the only writer of data frames (gorilla allows one
// concurrent writer; WriteControl may run beside it). It writes until the
// queue is empty, then ends; when the connection closes it sends the close
// frame and drops the TCP connection, which ends the reader.
func (c *conn) writeLoop() {
	for {
		if c.isAborted() {
			c.finish(true)
			return
		}
		items, closing, park := c.take()
		if park {
			return
		}
		if !c.writeItems(items) {
			c.closeNow(CloseNormal, "write failed")
			c.finish(false)
			return
		}
		if closing {
			c.finish(true)
			return
		}
		c.recycle(items)
	}
}

// startPings arms the keep-alive: a ping every pingPeriod from a timer, so
// that an idle connection needs no goroutine of its own for it.
func (c *conn) startPings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.ping = time.AfterFunc(c.hub.timing.PingPeriod, c.sendPing)
	}
}

func (c *conn) sendPing() {
	if c.isAborted() {
		return
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.hub.timing.WriteWait)); err != nil {
		c.closeNow(CloseNormal, "ping failed")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Once closing, finish stops the timer (under mu): never re-arm it
	// after that, or it would hold the connection until it fires.
	if !c.closing {
		c.ping.Reset(c.hub.timing.PingPeriod)
	}
}

// writeItems writes a batch, deltas merged where the client fell behind.
// It stops early, reporting success, when the connection is being aborted.
func (c *conn) writeItems(items []item) bool {
	items, merged := coalesce(items)
	if merged > 0 {
		c.hub.metrics.Coalesced.Add(float64(merged))
	}
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledFrame {
			framePool.Put(bp)
		}
	}()
	written := 0
	defer func() {
		c.hub.metrics.FramesOut.Add(float64(written))
		c.mu.Lock()
		c.framesOut += written
		c.mu.Unlock()
	}()
	for i := range items {
		// By pointer: a copy whose address appendFrame takes would be
		// moved to the heap, one allocation per frame.
		it := &items[i]
		if c.isAborted() {
			return true
		}
		var b []byte
		var err error
		switch {
		case it.own != nil:
			b, err = json.Marshal(it.own)
		case it.more != nil:
			it.frame.Text += it.more.String()
			fallthrough
		default:
			b, err = appendFrame((*bp)[:0], &it.frame)
			*bp = b
		}
		if err != nil { // only a programming error gets here
			c.hub.log.Error("marshal ws frame", zap.String("request_id", c.requestID), zap.Error(err))
			continue
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(c.hub.timing.WriteWait))
		if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			return false
		}
		if a, ok := it.own.(ackFrame); ok && !a.receivedAt.IsZero() {
			c.hub.metrics.AckSeconds.Observe(time.Since(a.receivedAt).Seconds())
		}
		written++
	}
	return true
}

type deltaKey struct {
	caseID string
	turn   int
}

// coalesce merges the queued deltas of one case and turn into the first
// of them as long as no other frame comes between (deltas of other cases,
// subscribed on the same connection, may interleave). Any other frame ends
// the run, so text never moves across an event.
func coalesce(items []item) ([]item, int) {
	// The runs open since the last other frame: one per case with a turn
	// streaming on this connection, so a short list searched in order.
	type run struct {
		k deltaKey
		i int
	}
	var buf [4]run
	open := buf[:0]
	out := items[:0]
	merged := 0
	for _, it := range items {
		if it.own != nil || it.frame.Type != "delta" {
			open = open[:0]
			out = append(out, it)
			continue
		}
		k := deltaKey{it.frame.CaseID, it.frame.Turn}
		i := slices.IndexFunc(open, func(r run) bool { return r.k == k })
		if i >= 0 {
			out[open[i].i].merge(it)
			merged++
			continue
		}
		open = append(open, run{k, len(out)})
		out = append(out, it)
	}
	return out, merged
}

// finish sends the close frame (when the connection still works), waits a
// moment for the client's close reply so that unread input does not turn
// our FIN into a reset, and drops the connection. It runs on the last
// writer and closes writerDone.
func (c *conn) finish(sendClose bool) {
	defer close(c.writerDone)
	c.mu.Lock()
	code, text := c.closeCode, c.closeText
	if c.ping != nil {
		c.ping.Stop()
	}
	c.mu.Unlock()
	if code == 0 {
		code = CloseNormal
	}
	if sendClose {
		msg := websocket.FormatCloseMessage(code, text)
		if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.hub.timing.WriteWait)); err == nil {
			t := time.NewTimer(c.hub.timing.CloseGrace)
			select {
			case <-c.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	_ = c.ws.Close()
}
