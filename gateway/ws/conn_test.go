package ws

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/faultmaven/faultmaven/gateway/ws/wstest"
)

// TestWSIdleConnectionHasNoWriterAndIsPinged: between frames a connection
// keeps no writer goroutine, its pings come from a timer and keep a silent
// client connected past the pong deadline, and frames queued later still
// go out in order through a fresh writer.
func TestWSIdleConnectionHasNoWriterAndIsPinged(t *testing.T) {
	e := newLiveEnv(t, Config{Timing: Timing{PingPeriod: 50 * time.Millisecond, PongWait: time.Second}})
	tok := e.register("alice")
	id := e.newCase(tok)
	c := e.connect(tok)
	var pings atomic.Int32
	c.Conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.Conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	c.Send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	c.Until(func(f frame) bool { return f.Type == "subscribed" })

	server := func() *conn {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		for sc := range e.hub.conns {
			return sc
		}
		return nil
	}()
	if server == nil {
		t.Fatal("no server-side connection")
	}
	writing := func() bool {
		server.mu.Lock()
		defer server.mu.Unlock()
		return server.writing
	}
	wstest.WaitFor(t, 5*time.Second, "the writer to end once the queue is empty", func() bool { return !writing() })

	// A silent client (it only answers pings, inside reads) stays connected
	// for well over pongWait: the timer's pings keep extending the deadline.
	// Staying open that long needs the timer to have re-armed at least once.
	if _, err := c.ReadFrame(2500 * time.Millisecond); err == nil || !isTimeout(err) {
		t.Fatalf("idle read: %v, want a timeout with the connection open", err)
	}
	if n := pings.Load(); n < 2 {
		t.Fatalf("%d pings: the ping timer did not re-arm", n)
	}
	if writing() {
		t.Fatal("a writer runs on an idle connection")
	}
	// gorilla's connection is unusable after a read timeout; a new one
	// shows the server side still streams in order through new writers.
	c2 := e.connect(tok)
	c2.Send(map[string]any{"type": "subscribe", "case_id": id, "since_seq": 0})
	c2.Until(func(f frame) bool { return f.Type == "subscribed" })
	c2.Send(wstest.TurnFrame(id, "idle-1", "disk usage alert on the build host"))
	frames := c2.Until(func(f frame) bool { return f.Type == "turn_done" })
	var order []string
	for _, f := range frames {
		if len(order) == 0 || order[len(order)-1] != f.Type {
			order = append(order, f.Type)
		}
	}
	if got := strings.Join(order, ","); !strings.HasPrefix(got, "ack,event,turn_started,delta") || !strings.HasSuffix(got, "event,turn_done") {
		t.Fatalf("frame order %s", got)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// TestWSCloseDuringHandshake: a logout or a shutdown can close a
// connection the hub knows but that is not upgraded yet. Nothing may write
// to the missing socket then; once the upgrade is done the close goes out
// and the connection's last writer ends.
func TestWSCloseDuringHandshake(t *testing.T) {
	e := newLiveEnv(t, Config{})
	for _, tc := range []struct {
		name  string
		close func(c *conn)
		code  int
	}{
		{"shutdown", func(c *conn) { c.closeNow(CloseGoingAway, "server shutting down") }, CloseGoingAway},
		{"logout", func(c *conn) {
			c.closeAfter(CloseUnauthorized, "logged out", errorFrame{Type: "error", Code: CodeLoggedOut, Message: "signed out"})
		}, CloseUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn(e.hub, "req-"+tc.name)
			defer c.cancel()
			tc.close(c) // before the upgrade: no socket yet
			c.mu.Lock()
			started := c.writing
			c.mu.Unlock()
			if started {
				t.Fatal("a writer started before the upgrade")
			}
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := e.hub.upgrader.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				e.hub.attach(c, ws)
				c.markAttached()
			}))
			defer ts.Close()
			conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var ce *websocket.CloseError
			for {
				_, _, err := conn.ReadMessage()
				if err == nil {
					continue // the logout's error frame
				}
				if !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("read: %v, want close %d", err, tc.code)
				}
				break
			}
			select {
			case <-c.writerDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the last writer did not end")
			}
		})
	}
}
