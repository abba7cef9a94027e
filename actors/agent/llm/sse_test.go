package llm

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/openai/openai-go/v3/packages/ssestream"
)

// events reads every event of body with an eventReader.
func events(t testing.TB, body io.Reader) ([]string, error) {
	t.Helper()
	r := newEventReader(body)
	defer r.release()
	var out []string
	for {
		data, err := r.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(data))
	}
}

// sdkEvents reads body with openai-go's SSE decoder, the reference.
func sdkEvents(body []byte) ([]string, error) {
	res := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bytes.NewReader(body))}
	d := ssestream.NewDecoder(res)
	defer d.Close()
	var out []string
	for d.Next() {
		out = append(out, strings.TrimSuffix(string(d.Event().Data), "\n"))
	}
	return out, d.Err()
}

func TestEventReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"two events", "data: a\n\ndata: b\n\n", []string{"a", "b"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"multi-line data", "data: a\ndata:b\ndata:  c\n\n", []string{"a\nb\n c"}},
		{"comments and fields", ": keep-alive\n\nevent: chunk\nid: 7\nretry: 100\ndata: x\nfoo: bar\n\n", []string{"x"}},
		{"blank lines between", "\n\n\ndata: a\n\n\n\n", []string{"a"}},
		{"empty data", "data:\n\ndata: \n\n", []string{"", ""}},
		{"field without colon", "data\n\n", []string{""}},
		{"unterminated event dropped", "data: a\n\ndata: b", []string{"a"}},
		{"unterminated event with newline dropped", "data: a\n\ndata: b\n", []string{"a"}},
		{"done", "data: {\"x\":1}\n\ndata: [DONE]\n\n", []string{`{"x":1}`, "[DONE]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := events(t, strings.NewReader(tc.in))
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events = %q, %v; want %q", got, err, tc.want)
			}
			// One byte per read must not change anything.
			got, err = events(t, iotest.OneByteReader(strings.NewReader(tc.in)))
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("byte by byte: events = %q, %v; want %q", got, err, tc.want)
			}
			ref, err := sdkEvents([]byte(tc.in))
			if err != nil || !reflect.DeepEqual(ref, tc.want) {
				t.Fatalf("openai-go reads %q, %v: the test's expectation differs from the SDK", ref, err)
			}
		})
	}
}

func TestEventReaderLongLines(t *testing.T) {
	long := strings.Repeat("x", 10_000) // longer than the 4 KiB buffer
	in := "data: " + long + "\n\n: " + long + "\ndata: short\n\n"
	got, err := events(t, strings.NewReader(in))
	if err != nil || len(got) != 2 || got[0] != long || got[1] != "short" {
		t.Fatalf("events: %d, err %v", len(got), err)
	}
}

func TestEventReaderBounds(t *testing.T) {
	huge := "data: " + strings.Repeat("x", maxEventBytes) + "\n\n"
	if _, err := events(t, strings.NewReader(huge)); !errors.Is(err, errEventTooLarge) {
		t.Fatalf("one huge line: err = %v, want errEventTooLarge", err)
	}
	line := "data: " + strings.Repeat("x", 1<<20) + "\n"
	many := strings.Repeat(line, 17) + "\n"
	if _, err := events(t, strings.NewReader(many)); !errors.Is(err, errEventTooLarge) {
		t.Fatalf("many data lines: err = %v, want errEventTooLarge", err)
	}
}

func TestEventReaderReadError(t *testing.T) {
	body := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(io.ErrUnexpectedEOF))
	got, err := events(t, body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("events = %q, err %v; want [a] then unexpected EOF", got, err)
	}
}

// FuzzEventReader checks the framing against openai-go's decoder, event
// for event, and that it never panics.
func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\ndata: b\n\n", "data: a\r\ndata: b\r\n\r\n", ": c\n\nevent: e\ndata:x\n\n",
		"data\n\ndata:\n\n", "\r\n\r\ndata: [DONE]\n\n", "data: a\n\ndata: b", "data: a\rb\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := events(t, bytes.NewReader(in))
		if err != nil {
			t.Fatalf("events(%q): %v", in, err)
		}
		want, err := sdkEvents(in)
		if err != nil {
			t.Skip("the reference failed")
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("events(%q)\n got %q\nwant %q", in, got, want)
		}
	})
}
