package llm

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The decoder of streamed chat.completion.chunk objects. It reads only the
// fields Stream uses, in one pass, without reflection, and allocates only
// the strings it returns. Chunks are outside input: the decoder checks the
// whole text is valid JSON (RFC 8259, as encoding/json does) and never
// panics on any input (FuzzDecodeChunk).
//
// Semantics of the fields it reads:
//   - Keys match exactly (case-sensitive). When a key repeats, its last
//     occurrence wins, wholly replacing an earlier one.
//   - A known field of an unexpected type (a number where a string belongs,
//     a float index, null) counts as absent; the rest of the chunk is still
//     used. Integers must fit in int64.
//   - Strings are unescaped as encoding/json does: invalid UTF-8 and lone
//     surrogates become U+FFFD.

// maxJSONDepth bounds nesting, as encoding/json does.
const maxJSONDepth = 10000

// errChunkSyntax is wrapped by every syntax error of a chunk.
var errChunkSyntax = errors.New("llm: malformed chunk")

// chunk is what one streamed event says. decode resets it; its slices are
// reused from chunk to chunk.
type chunk struct {
	model   string
	choices []choiceDelta
	// hasUsage reports a usage object; its counts are 0 when absent.
	hasUsage                       bool
	promptTokens, completionTokens int64
	// errMsg is set when the event is an error ({"error": ...} not null):
	// the error's message, or its JSON text when it has none.
	errMsg   string
	hasError bool
}

// choiceDelta is one element of "choices".
type choiceDelta struct {
	index        int64
	content      string
	finishReason string
	toolCalls    []toolCallDelta
}

// toolCallDelta is one element of "delta.tool_calls": a fragment of a tool
// call, addressed by index.
type toolCallDelta struct {
	index     int64
	id        string
	name      string
	arguments string
}

// decode parses one event's data into c.
func (c *chunk) decode(data []byte) error {
	c.model, c.hasUsage, c.promptTokens, c.completionTokens = "", false, 0, 0
	c.errMsg, c.hasError = "", false
	c.choices = c.choices[:0]
	d := jsonDecoder{b: data}
	d.space()
	if d.peek() != '{' {
		if err := d.skip(); err != nil {
			return err
		}
		if err := d.end(); err != nil {
			return err
		}
		return errors.New("llm: chunk is not a JSON object")
	}
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "model":
			c.model = d.stringOr("")
		case "choices":
			c.choices = c.choices[:0]
			return d.array(func() error {
				if d.peek() != '{' {
					return d.skip() // not a choice
				}
				c.choices = grow(c.choices)
				ch := &c.choices[len(c.choices)-1]
				*ch = choiceDelta{toolCalls: ch.toolCalls[:0]}
				return d.object(func(key []byte) error { return c.choiceField(&d, ch, key) })
			}, true)
		case "usage":
			c.hasUsage, c.promptTokens, c.completionTokens = false, 0, 0
			if d.peek() != '{' {
				return d.skip()
			}
			c.hasUsage = true
			return d.object(func(key []byte) error {
				switch string(key) {
				case "prompt_tokens":
					c.promptTokens = d.intOr(0)
				case "completion_tokens":
					c.completionTokens = d.intOr(0)
				default:
					return d.skip()
				}
				return d.err
			})
		case "error":
			return c.errorField(&d)
		default:
			return d.skip()
		}
		return d.err
	})
	if err != nil {
		return err
	}
	return d.end()
}

func (c *chunk) choiceField(d *jsonDecoder, ch *choiceDelta, key []byte) error {
	switch string(key) {
	case "index":
		ch.index = d.intOr(0)
	case "finish_reason":
		ch.finishReason = d.stringOr("")
	case "delta":
		ch.content, ch.toolCalls = "", ch.toolCalls[:0]
		return d.objectOrSkip(func(key []byte) error {
			switch string(key) {
			case "content":
				ch.content = d.stringOr("")
			case "tool_calls":
				ch.toolCalls = ch.toolCalls[:0]
				return d.array(func() error {
					if d.peek() != '{' {
						return d.skip() // not a tool call
					}
					ch.toolCalls = grow(ch.toolCalls)
					tc := &ch.toolCalls[len(ch.toolCalls)-1]
					*tc = toolCallDelta{}
					return d.object(func(key []byte) error { return toolCallField(d, tc, key) })
				}, true)
			default:
				return d.skip()
			}
			return d.err
		})
	default:
		return d.skip()
	}
	return d.err
}

func toolCallField(d *jsonDecoder, tc *toolCallDelta, key []byte) error {
	switch string(key) {
	case "index":
		tc.index = d.intOr(0)
	case "id":
		tc.id = d.stringOr("")
	case "function":
		tc.name, tc.arguments = "", ""
		return d.objectOrSkip(func(key []byte) error {
			switch string(key) {
			case "name":
				tc.name = d.stringOr("")
			case "arguments":
				tc.arguments = d.stringOr("")
			default:
				return d.skip()
			}
			return d.err
		})
	default:
		return d.skip()
	}
	return d.err
}

// errorField reads the value of a top-level "error": null is no error; an
// object's "message" string is the message; a string is its own message;
// anything else is quoted as JSON.
func (c *chunk) errorField(d *jsonDecoder) error {
	c.errMsg, c.hasError = "", false
	start := d.pos
	switch d.peek() {
	case 'n':
		return d.skip()
	case '"':
		c.hasError = true
		c.errMsg = d.stringOr("")
		return d.err
	case '{':
		c.hasError = true
		msg, found := "", false
		err := d.object(func(key []byte) error {
			if string(key) != "message" {
				return d.skip()
			}
			found = d.peek() == '"'
			msg = d.stringOr("")
			return d.err
		})
		if err != nil {
			return err
		}
		c.errMsg = string(d.b[start:d.pos])
		if found && msg != "" {
			c.errMsg = msg
		}
		return nil
	default:
		c.hasError = true
		if err := d.skip(); err != nil {
			return err
		}
		c.errMsg = string(d.b[start:d.pos])
		return nil
	}
}

// grow extends s by one element, reusing its spare capacity.
func grow[T any](s []T) []T {
	if len(s) < cap(s) {
		return s[:len(s)+1]
	}
	var zero T
	return append(s, zero)
}

// jsonDecoder is a validating recursive-descent reader over one JSON text.
// Its methods stop at the first error, which they also keep in err.
type jsonDecoder struct {
	b      []byte
	pos    int
	depth  int
	err    error
	buf    []byte // scratch for unescaping
	keyBuf []byte // an unescaped key
}

func (d *jsonDecoder) fail(what string) error {
	if d.err == nil {
		d.err = &syntaxError{msg: errChunkSyntax.Error() + ": " + what + " at offset " + strconv.Itoa(d.pos)}
	}
	return d.err
}

// syntaxError is a chunk's syntax error; it matches errChunkSyntax.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string        { return e.msg }
func (e *syntaxError) Is(target error) bool { return target == errChunkSyntax }

func (d *jsonDecoder) space() {
	for d.pos < len(d.b) {
		switch d.b[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, 0 at the end.
func (d *jsonDecoder) peek() byte {
	if d.pos < len(d.b) {
		return d.b[d.pos]
	}
	return 0
}

// end checks that only whitespace follows.
func (d *jsonDecoder) end() error {
	d.space()
	if d.pos != len(d.b) {
		return d.fail("data after the value")
	}
	return nil
}

// object reads an object, calling field for each key with the decoder
// positioned at the value; field must consume the value.
func (d *jsonDecoder) object(field func(key []byte) error) error {
	if d.peek() != '{' {
		return d.fail("want an object")
	}
	if d.depth++; d.depth > maxJSONDepth {
		return d.fail("nested too deeply")
	}
	d.pos++
	d.space()
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.space()
		if d.peek() != '"' {
			return d.fail("want a key")
		}
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if hasBackslash(key) {
			// Rare: a key spelled with escapes must still match.
			d.keyBuf = append(d.keyBuf[:0], d.unquote(key)...)
			key = d.keyBuf
		}
		d.space()
		if d.peek() != ':' {
			return d.fail("want ':'")
		}
		d.pos++
		d.space()
		if err := field(key); err != nil {
			return err
		}
		d.space()
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.fail("want ',' or '}'")
		}
	}
}

// objectOrSkip reads an object with field, or skips any other value.
func (d *jsonDecoder) objectOrSkip(field func(key []byte) error) error {
	if d.peek() != '{' {
		return d.skip()
	}
	return d.object(field)
}

// array reads an array, calling elem with the decoder at each element;
// elem must consume it. With lenient, a value that is not an array is
// skipped instead of failing.
func (d *jsonDecoder) array(elem func() error, lenient bool) error {
	if d.peek() != '[' {
		if lenient {
			return d.skip()
		}
		return d.fail("want an array")
	}
	if d.depth++; d.depth > maxJSONDepth {
		return d.fail("nested too deeply")
	}
	d.pos++
	d.space()
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.space()
		if err := elem(); err != nil {
			return err
		}
		d.space()
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.fail("want ',' or ']'")
		}
	}
}

// skip checks and passes over one value of any type.
func (d *jsonDecoder) skip() error {
	switch c := d.peek(); {
	case c == '{':
		return d.object(func([]byte) error { return d.skip() })
	case c == '[':
		return d.array(d.skip, false)
	case c == '"':
		_, err := d.rawString()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == 0 && d.pos >= len(d.b):
		return d.fail("unexpected end")
	default:
		return d.fail("unexpected character")
	}
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.b)-d.pos < len(word) || string(d.b[d.pos:d.pos+len(word)]) != word {
		return d.fail("bad literal")
	}
	d.pos += len(word)
	return nil
}

// number checks and passes over a number, returning its text.
func (d *jsonDecoder) number() ([]byte, error) {
	start := d.pos
	digits := func() int {
		n := 0
		for d.pos < len(d.b) && d.b[d.pos] >= '0' && d.b[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, d.fail("bad number")
	}
	if d.peek() == '.' {
		d.pos++
		if digits() == 0 {
			return nil, d.fail("bad number")
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if digits() == 0 {
			return nil, d.fail("bad number")
		}
	}
	return d.b[start:d.pos], nil
}

// intOr reads an integer that fits in int64; any other value (a float, a
// string, null, ...) is skipped and def returned. Syntax errors are left in
// d.err.
func (d *jsonDecoder) intOr(def int64) int64 {
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		_ = d.skip()
		return def
	}
	text, err := d.number()
	if err != nil {
		return def
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// stringOr reads a string; any other value is skipped and def returned.
// Syntax errors are left in d.err.
func (d *jsonDecoder) stringOr(def string) string {
	if d.peek() != '"' {
		_ = d.skip()
		return def
	}
	raw, err := d.rawString()
	if err != nil {
		return def
	}
	return d.unquote(raw)
}

// rawString checks and passes over a string, returning its contents
// between the quotes, still escaped.
func (d *jsonDecoder) rawString() ([]byte, error) {
	d.pos++ // the opening quote
	start := d.pos
	for d.pos < len(d.b) {
		c := d.b[d.pos]
		switch {
		case c == '"':
			d.pos++
			return d.b[start : d.pos-1], nil
		case c == '\\':
			d.pos++
			if d.pos >= len(d.b) {
				return nil, d.fail("unexpected end in a string")
			}
			switch d.b[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				if len(d.b)-d.pos < 5 || !isHex4(d.b[d.pos+1:d.pos+5]) {
					return nil, d.fail(`bad \u escape`)
				}
				d.pos += 5
			default:
				return nil, d.fail("bad escape")
			}
		case c < 0x20:
			return nil, d.fail("control character in a string")
		default:
			d.pos++
		}
	}
	return nil, d.fail("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote turns the contents of a string checked by rawString into a Go
// string. Text without escapes and with valid UTF-8 costs one allocation.
func (d *jsonDecoder) unquote(raw []byte) string {
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain || (!hasBackslash(raw) && utf8.Valid(raw)) {
		return string(raw)
	}
	out := d.buf[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			i++
			switch e := raw[i]; e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(raw[i+1:])
				i += 4
				if utf16.IsSurrogate(r) {
					// A pair is two escapes; rawString checked that an
					// escape \u has four hex digits.
					r2 := utf8.RuneError
					if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
						r2 = hex4(raw[i+3:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default: // '"', '\\', '/'
				out = append(out, e)
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, r)
			i += size
		}
	}
	d.buf = out
	return string(out)
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}
