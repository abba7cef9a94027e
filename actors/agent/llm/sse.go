package llm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
)

// The server-sent-events framing of a streamed completion, read the way
// openai-go's decoder reads it: lines end at "\n" (a "\r" before it is
// dropped); "data:" lines are joined, each followed by "\n"; an empty line
// ends an event; comment lines (":"), "event:", "id:" and "retry:" lines and
// lines of unknown fields are ignored; an event still open when the body
// ends is dropped.

// maxEventBytes bounds one event (the data of one chunk): a chunk is a few
// hundred bytes, a tool call's arguments in one piece at most a few hundred
// kilobytes.
const maxEventBytes = 16 << 20

// errEventTooLarge ends a stream with an event over maxEventBytes.
var errEventTooLarge = errors.New("llm: a stream event is larger than 16 MiB")

// readerPool recycles the 4 KiB line buffers of finished streams.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// eventReader yields the data of each event of an SSE body.
type eventReader struct {
	br   *bufio.Reader
	data []byte // the current event's data
	line []byte // a line longer than br's buffer, assembled
}

func newEventReader(body io.Reader) *eventReader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(body)
	return &eventReader{br: br}
}

// release returns the line buffer; r must not be used afterwards.
func (r *eventReader) release() {
	if r.br != nil {
		r.br.Reset(nil)
		readerPool.Put(r.br)
		r.br = nil
	}
}

// next returns the data of the next event, without its final "\n". The
// slice is valid until the next call. At the end of the body it returns
// io.EOF; a broken body returns the read error (io.ErrUnexpectedEOF when
// the connection dropped mid-response).
func (r *eventReader) next() ([]byte, error) {
	r.data = r.data[:0]
	for {
		line, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			if len(r.data) == 0 {
				continue // no data since the last event: nothing to dispatch
			}
			return r.data[:len(r.data)-1], nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		if string(name) != "data" {
			continue // a comment, an event type, an id, a retry: unused
		}
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if len(r.data)+len(value)+1 > maxEventBytes {
			return nil, errEventTooLarge
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	}
}

// readLine returns the next line without its end. A last line without an
// end is returned as a line; after it comes io.EOF.
func (r *eventReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.line = append(r.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.line) > maxEventBytes {
				return nil, errEventTooLarge
			}
			line, err = r.br.ReadSlice('\n')
			r.line = append(r.line, line...)
		}
		line = r.line
	}
	switch {
	case err == io.EOF && len(line) > 0:
		err = nil // the last line; EOF comes with the next read
	case err != nil:
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
