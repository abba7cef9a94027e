package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/gateway/auth"
)

// The reading side of a connection: client frames in, calls into the auth
// and case services, answers queued for the writer. Everything here runs
// on the handler's goroutine, so the reader-owned fields of conn need no
// lock.

// tokenBucket limits client frames: rate per second, up to burst at once.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *tokenBucket) allow(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// readLoop runs on the handler's goroutine until the connection ends.
func (c *conn) readLoop() {
	t := c.hub.timing
	c.ws.SetReadLimit(c.hub.limits.ReadLimit)
	if c.authed {
		_ = c.ws.SetReadDeadline(time.Now().Add(t.PongWait))
	} else {
		_ = c.ws.SetReadDeadline(time.Now().Add(t.AuthWait))
	}
	c.ws.SetPongHandler(func(string) error {
		if c.authed { // before auth only the auth frame buys time
			return c.ws.SetReadDeadline(time.Now().Add(t.PongWait))
		}
		return nil
	})
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.mu.Lock()
		closing := c.closing
		c.framesIn++
		c.mu.Unlock()
		c.hub.metrics.FramesIn.Inc()
		if closing {
			continue // draining until the client answers our close
		}
		if c.authed {
			_ = c.ws.SetReadDeadline(time.Now().Add(t.PongWait))
		}
		if mt != websocket.TextMessage {
			if !c.authed {
				c.refuse("authenticate first with an auth frame")
				continue
			}
			c.sendError(&frameError{Code: CodeMalformed, Message: "frames are JSON text, not binary"})
			continue
		}
		c.handleFrame(data)
	}
}

func (c *conn) readFailed(err error) {
	var ce *websocket.CloseError
	var ne interface{ Timeout() bool }
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent 1009 already.
		c.drainTooBig()
		c.closeNow(websocket.CloseMessageTooBig, "frame too big")
	case errors.As(err, &ce):
		c.closeNow(ce.Code, "closed by the client") // gorilla has answered the close
	case errors.As(err, &ne) && ne.Timeout() && !c.authed:
		c.closeAfter(CloseUnauthorized, "authentication timeout",
			errorFrame{Type: "error", Code: CodeUnauthorized, Message: "no auth frame in time"})
	default:
		c.closeNow(CloseNormal, "connection lost")
	}
}

// drainTooBig reads and discards what the client still sends after a frame
// over the limit, for at most closeGrace and twice the limit. The client is
// usually still writing the rest of that frame: closing the socket with
// its bytes unread would reset the connection, and a reset makes the
// client's kernel drop the 1009 close frame before the client reads it.
func (c *conn) drainTooBig() {
	nc := c.ws.NetConn()
	if nc.SetReadDeadline(time.Now().Add(c.hub.timing.CloseGrace)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, nc, 2*c.hub.limits.ReadLimit)
}

// refuse answers anything but a good auth frame before authentication.
func (c *conn) refuse(msg string) {
	c.hub.metrics.Refused.WithLabelValues("unauthorized").Inc()
	c.closeAfter(CloseUnauthorized, "unauthorized", errorFrame{Type: "error", Code: CodeUnauthorized, Message: msg})
}

func (c *conn) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.hub.timing.CallTimeout)
}

func (c *conn) handleFrame(data []byte) {
	f, ferr := decodeClientFrame(data)
	if !c.authed {
		if ferr != nil || f.Type != frameAuth {
			c.refuse(`authenticate first: {"type":"auth","token":"<access token>"}`)
			return
		}
		c.authenticate(f.Token)
		return
	}
	if !c.bucket.allow(time.Now()) {
		ref := f.ClientMsgID
		if ref == "" {
			ref = f.CaseID
		}
		c.sendError(&frameError{Code: CodeRateLimited, Ref: ref, Message: "too many frames; slow down"})
		return
	}
	if ferr != nil {
		c.sendError(ferr)
		return
	}
	switch f.Type {
	case frameAuth:
		c.reauthenticate(f.Token)
	case framePing:
		c.send(pongFrame{Type: "pong"})
	case frameSubscribe:
		c.subscribe(f.CaseID, f.SinceSeq)
	case frameUnsubscribe:
		c.unsubscribe(f.CaseID)
	case frameTurn:
		c.turn(f)
	case frameCancel:
		ctx, cancel := c.call()
		err := c.hub.cases.CancelTurn(ctx, c.user.UserID, f.CaseID)
		cancel()
		if err != nil {
			c.serviceError(err, f.CaseID, f.CaseID)
		}
	}
}

func (c *conn) authenticate(token string) {
	ctx, cancel := c.call()
	p, err := c.hub.auth.Verify(ctx, token)
	cancel()
	if err == nil && p.UserID == "" {
		err = auth.ErrInvalidToken
	}
	if err != nil {
		e := c.hub.clientError(err)
		if e.Internal || e.ServerFault {
			c.log.Error("ws auth failed", zap.Error(err))
			c.closeAfter(CloseInternalServer, "auth unavailable",
				errorFrame{Type: "error", Code: e.Frame, Message: e.Message})
			return
		}
		c.refuse("invalid or expired token")
		return
	}
	if !c.hub.claim(c, p.UserID) {
		c.hub.metrics.Refused.WithLabelValues("too_many_connections").Inc()
		c.closeAfter(CloseTooManyConns, "too many connections",
			errorFrame{Type: "error", Code: CodeTooManyConns, Message: "too many open connections for this user"})
		return
	}
	// A logout between Verify and the claim missed this connection
	// (Hub.EndUser closes claimed ones only): check the token again.
	ctx, cancel = c.call()
	_, err = c.hub.auth.Verify(ctx, token)
	cancel()
	if err != nil {
		c.refuse("invalid or expired token")
		return
	}
	c.ready(p)
}

// ready marks the connection authenticated and greets the client.
func (c *conn) ready(p auth.Principal) {
	c.user, c.authed = p, true
	c.log = c.log.With(zap.String("user_id", p.UserID))
	_ = c.ws.SetReadDeadline(time.Now().Add(c.hub.timing.PongWait))
	c.armExpiry(p.Expires)
	c.send(readyFrame{Type: "ready", Protocol: protocolVersion, UserID: p.UserID})
}

// armExpiry (re)sets the timer that ends the connection when its access
// token expires, so a connection never outlives the token it was opened
// with. Clients keep a connection by sending a fresh auth frame first.
func (c *conn) armExpiry(at time.Time) {
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if at.IsZero() {
		return
	}
	c.expiry = time.AfterFunc(time.Until(at), func() {
		c.closeAfter(CloseUnauthorized, "token expired", errorFrame{Type: "error", Code: CodeTokenExpired,
			Message: "the access token expired: refresh it and reconnect, or send a fresh auth frame before it expires"})
	})
}

// reauthenticate accepts a fresh token for the same user on an open
// connection and moves its expiry. A bad token, or one of another user,
// is refused with an error frame; the connection keeps its current token
// (and expiry).
func (c *conn) reauthenticate(token string) {
	ctx, cancel := c.call()
	p, err := c.hub.auth.Verify(ctx, token)
	cancel()
	switch {
	case err != nil:
		if e := c.hub.clientError(err); e.Internal || e.ServerFault {
			c.log.Error("ws re-auth failed", zap.Error(err))
			c.sendError(&frameError{Code: CodeInternal, Message: "authentication is unavailable; the current token stays in use"})
			return
		}
		c.sendError(&frameError{Code: CodeUnauthorized, Message: "invalid or expired token; the current token stays in use"})
	case p.UserID != c.user.UserID:
		c.sendError(&frameError{Code: CodeUnauthorized, Message: "the token belongs to another user; open a new connection for it"})
	default:
		c.user = p
		c.armExpiry(p.Expires)
		c.send(readyFrame{Type: "ready", Protocol: protocolVersion, UserID: p.UserID})
	}
}

func (c *conn) subscribe(caseID string, since uint64) {
	c.mu.Lock()
	_, already := c.subs[caseID] // a resubscribe replays again and keeps the subscription
	if !already && len(c.subs) >= c.hub.limits.MaxSubs {
		c.mu.Unlock()
		c.sendError(&frameError{Code: CodeLimitExceeded, Ref: caseID, Message: "too many subscriptions on one connection"})
		return
	}
	c.subs[caseID] = struct{}{}
	c.replaying = true
	c.mu.Unlock()

	ctx, cancel := c.call()
	_, err := c.hub.cases.Subscribe(ctx, c.user.UserID, caseID, since, c)
	cancel()
	if !errors.Is(err, actors.ErrNotFound) {
		// Even a failed call may have reached the case (a timeout): leave
		// it explicitly at the end. A case we may not see never held us.
		c.touched[caseID] = struct{}{}
	}

	c.mu.Lock()
	c.replaying, c.grace = false, true
	if err != nil && !already {
		delete(c.subs, caseID)
	}
	c.mu.Unlock()
	if err != nil && !errors.Is(err, actors.ErrSlowSubscriber) {
		c.serviceError(err, caseID, caseID)
	}
}

func (c *conn) unsubscribe(caseID string) {
	c.mu.Lock()
	_, ok := c.subs[caseID]
	delete(c.subs, caseID)
	c.mu.Unlock()
	if ok {
		ctx, cancel := c.call()
		c.hub.cases.Unsubscribe(ctx, c.user.UserID, caseID, c)
		timedOut := ctx.Err() != nil
		cancel()
		if !timedOut {
			delete(c.touched, caseID)
		}
	}
}

func (c *conn) turn(f clientFrame) {
	received := time.Now()
	refs, err := c.attachments(f)
	if err != nil {
		c.serviceError(err, f.CaseID, f.ClientMsgID)
		return
	}
	c.mu.Lock()
	c.ack = pendingAck{caseID: f.CaseID, clientMsgID: f.ClientMsgID, receivedAt: received}
	c.mu.Unlock()
	ctx, cancel := c.call()
	ack, err := c.hub.cases.SubmitTurn(ctx, actors.TurnRequest{
		Owner: c.user.UserID, CaseID: f.CaseID, ClientMsgID: f.ClientMsgID,
		Text: f.Text, Evidence: refs, ReceivedAt: received,
	})
	cancel()
	c.mu.Lock()
	sent := c.ack.sent
	c.ack = pendingAck{}
	c.mu.Unlock()
	if err != nil {
		c.serviceError(err, f.CaseID, f.ClientMsgID)
		return
	}
	if !sent { // a duplicate, or this connection is not subscribed to the case
		c.send(ackFrame{Type: "ack", ClientMsgID: ack.ClientMsgID, CaseID: ack.CaseID, Seq: ack.Seq, Turn: ack.Turn,
			receivedAt: received})
	}
}

// attachments resolves a turn's attachments, ids of files uploaded to the
// case with POST /api/v1/cases/{case_id}/uploaded-files, into the
// references the case records with the message. The evidence store knows
// no owners, so the case's ownership is checked first: a file id of
// someone else's case is "not_found" like the case itself.
func (c *conn) attachments(f clientFrame) ([]actors.EvidenceRef, error) {
	if len(f.Attachments) == 0 {
		return nil, nil
	}
	ctx, cancel := c.call()
	defer cancel()
	if _, err := c.hub.cases.Get(ctx, c.user.UserID, f.CaseID); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(f.Attachments))
	var refs []actors.EvidenceRef
	for _, id := range f.Attachments {
		if seen[id] {
			continue
		}
		seen[id] = true
		ref, err := c.hub.evidence.Ref(ctx, f.CaseID, id)
		if errors.Is(err, evidence.ErrNotFound) {
			return nil, fmt.Errorf("%w: attachment %s is not a file uploaded to this case", ErrAttachmentNotFound, id)
		}
		if err != nil {
			return nil, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// serviceError answers a failed call into the case service with an error
// frame; unexpected errors are logged and shown as "internal".
func (c *conn) serviceError(err error, caseID, ref string) {
	e := c.hub.clientError(err)
	if e.Internal {
		c.log.Error("ws request failed", zap.String("case_id", caseID), zap.Error(err))
	} else if e.ServerFault {
		c.log.Warn("ws request not served", zap.String("case_id", caseID), zap.String("code", e.Code), zap.Error(err))
	}
	c.sendError(&frameError{Code: e.Frame, Message: e.Message, Ref: ref})
}

// cleanup runs on the handler goroutine once the reader has returned: it
// waits for the writer, leaves every case, and logs the connection.
func (c *conn) cleanup() {
	if c.expiry != nil {
		c.expiry.Stop()
	}
	close(c.readerDone)
	<-c.writerDone
	c.cancel()
	for caseID := range c.touched {
		ctx, cancel := context.WithTimeout(c.hub.stop, c.hub.timing.CallTimeout)
		c.hub.cases.Unsubscribe(ctx, c.user.UserID, caseID, c)
		cancel()
	}
	c.mu.Lock()
	code, text, in, out := c.closeCode, c.closeText, c.framesIn, c.framesOut
	c.mu.Unlock()
	lvl := zap.InfoLevel
	if code == CloseSlowConsumer {
		lvl = zap.WarnLevel
	}
	c.log.Log(lvl, "ws closed", zap.Int("close_code", code), zap.String("close_reason", text),
		zap.Int("frames_in", in), zap.Int("frames_out", out), zap.Duration("duration", time.Since(c.start)))
}
