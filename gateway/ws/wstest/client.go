// Package wstest is a test's end of a WebSocket connection to the gateway
// (protocol v1, docs/protocol.md): it sends frames and reads the server's,
// decoded loosely for assertions. Only tests import it; the gateway's and
// package ws's tests share it.
package wstest

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Frame is any server frame, decoded loosely for assertions.
type Frame struct {
	Type        string          `json:"type"`
	CaseID      string          `json:"case_id"`
	Seq         uint64          `json:"seq"`
	Kind        string          `json:"kind"`
	Data        json.RawMessage `json:"data"`
	Turn        int             `json:"turn"`
	Text        string          `json:"text"`
	HeadSeq     *uint64         `json:"head_seq"`
	Code        string          `json:"code"`
	Message     string          `json:"message"`
	Ref         string          `json:"ref"`
	ClientMsgID string          `json:"client_msg_id"`
	Protocol    int             `json:"protocol"`
	UserID      string          `json:"user_id"`
	Raw         string          `json:"-"` // the frame as received
}

// Client is a test's end of a connection; only the test goroutine uses it.
type Client struct {
	T    testing.TB
	Conn *websocket.Conn
}

// Dial connects to url; token != "" authenticates on the upgrade request
// and hdr adds headers (Origin, ...). A nil dialer has a 5 s handshake
// timeout. It returns the handshake response even when the upgrade is
// refused; the connection and the response body are closed when the test
// ends.
func Dial(t testing.TB, url, token string, hdr http.Header, dialer *websocket.Dialer) (*Client, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if dialer == nil {
		dialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	conn, resp, err := dialer.Dial(url, hdr)
	if resp != nil && resp.Body != nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &Client{T: t, Conn: conn}, resp, nil
}

// Connect dials with the bearer token and reads the ready frame; it fails
// the test on anything else.
func Connect(t testing.TB, url, token string) *Client {
	t.Helper()
	c, resp, err := Dial(t, url, token, nil, nil)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	if f := c.Next(); f.Type != "ready" || f.Protocol != 1 || f.UserID == "" {
		t.Fatalf("want ready, got %s", f.Raw)
	}
	return c
}

// SendRaw writes s as one text frame.
func (c *Client) SendRaw(s string) {
	c.T.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.Conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.T.Fatalf("write %q: %v", s, err)
	}
}

// Send writes v as JSON in one text frame.
func (c *Client) Send(v any) {
	c.T.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.T.Fatal(err)
	}
	c.SendRaw(string(b))
}

// ReadFrame reads one frame within d.
func (c *Client) ReadFrame(d time.Duration) (Frame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	mt, b, err := c.Conn.ReadMessage()
	if err != nil {
		return Frame{}, err
	}
	if mt != websocket.TextMessage {
		return Frame{}, errors.New("binary frame from server")
	}
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, err
	}
	f.Raw = string(b)
	return f, nil
}

// Next reads one frame or fails the test after 10 s.
func (c *Client) Next() Frame {
	c.T.Helper()
	f, err := c.ReadFrame(10 * time.Second)
	if err != nil {
		c.T.Fatalf("read frame: %v", err)
	}
	return f
}

// Until reads frames until stop accepts one; it returns all of them, the
// accepted one last. It fails the test after 20 s.
func (c *Client) Until(stop func(Frame) bool) []Frame {
	c.T.Helper()
	var got []Frame
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f := c.Next()
		got = append(got, f)
		if stop(f) {
			return got
		}
	}
	c.T.Fatalf("no matching frame within 20s; got %d frames", len(got))
	return nil
}

// TurnFrame is a turn frame.
func TurnFrame(caseID, msgID, text string) map[string]any {
	return map[string]any{"type": "turn", "case_id": caseID, "client_msg_id": msgID, "text": text}
}

// ExpectClose reads, keeping the frames, until the server closes the
// connection with code; it fails the test on another code or after 20 s.
func (c *Client) ExpectClose(code int) []Frame {
	c.T.Helper()
	var got []Frame
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		f, err := c.ReadFrame(time.Until(deadline))
		if err == nil {
			got = append(got, f)
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != code {
				c.T.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
			}
			return got
		}
		c.T.Fatalf("want close %d, got %v after %d frames", code, err, len(got))
	}
	c.T.Fatalf("no close within 20s")
	return nil
}

// RoundTrip proves the connection still works: ping → pong.
func (c *Client) RoundTrip() {
	c.T.Helper()
	c.Send(map[string]string{"type": "ping"})
	if f := c.Next(); f.Type != "pong" {
		c.T.Fatalf("want pong, got %s", f.Raw)
	}
}

// Subscribe subscribes to caseID from since and returns the replayed
// frames, the subscribed frame last; anything but subscribed fails the
// test.
func (c *Client) Subscribe(caseID string, since uint64) []Frame {
	c.T.Helper()
	c.Send(map[string]any{"type": "subscribe", "case_id": caseID, "since_seq": since})
	frames := c.Until(func(f Frame) bool { return f.Type == "subscribed" || f.Type == "error" })
	if last := frames[len(frames)-1]; last.Type != "subscribed" || last.CaseID != caseID || last.HeadSeq == nil {
		c.T.Fatalf("subscribe %s: %s", caseID, last.Raw)
	}
	return frames
}

// WantError reads the next frame and fails the test unless it is an error
// frame with code and ref and a message.
func (c *Client) WantError(code, ref string) Frame {
	c.T.Helper()
	f := c.Next()
	if f.Type != "error" || f.Code != code || f.Ref != ref || f.Message == "" {
		c.T.Fatalf("want error %s ref %q, got %s", code, ref, f.Raw)
	}
	return f
}

// WaitFor polls cond every 5 ms until it holds, or fails the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
