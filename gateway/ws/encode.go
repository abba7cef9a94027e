package ws

import (
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors"
)

// Encoding case frames for the wire. Deltas are most of what a connection
// writes (one per token under light load), so their JSON is appended by
// hand, into a pooled buffer, rather than by encoding/json's reflection.
// The bytes are exactly what json.Marshal(&frame) produces (FuzzAppendFrame
// checks it), HTML escaping included.

// framePool holds scratch buffers for encoding frames.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledFrame: larger buffers (a long answer's event) are not kept.
const maxPooledFrame = 64 << 10

// appendFrame appends f's JSON to dst.
func appendFrame(dst []byte, f *actors.Frame) ([]byte, error) {
	if len(f.Data) > 0 {
		// Events carry JSON data that json.Marshal checks and compacts.
		b, err := json.Marshal(f)
		return append(dst, b...), err
	}
	dst = append(dst, `{"type":`...)
	dst = appendJSONString(dst, f.Type)
	dst = append(dst, `,"case_id":`...)
	dst = appendJSONString(dst, f.CaseID)
	if f.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, f.Seq, 10)
	}
	if f.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = appendJSONString(dst, f.Kind)
	}
	if f.Turn != 0 {
		dst = append(dst, `,"turn":`...)
		dst = strconv.AppendInt(dst, int64(f.Turn), 10)
	}
	if f.Text != "" {
		dst = append(dst, `,"text":`...)
		dst = appendJSONString(dst, f.Text)
	}
	if f.HeadSeq != nil {
		dst = append(dst, `,"head_seq":`...)
		dst = strconv.AppendUint(dst, *f.HeadSeq, 10)
	}
	if f.Code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendJSONString(dst, f.Code)
	}
	if f.Message != "" {
		dst = append(dst, `,"message":`...)
		dst = appendJSONString(dst, f.Message)
	}
	return append(dst, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json writes
// it: <, > and & escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
