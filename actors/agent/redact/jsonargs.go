package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Tool-call arguments are JSON text. Redacting them as plain text would
// put pseudonyms over JSON escapes and restore originals that need
// escaping (a quote in a password) unescaped, so valid JSON is handled per
// string literal: each one is decoded, pseudonymised or restored, and
// re-encoded only if it changed; numbers, punctuation and layout are kept.
// Arguments that are not valid JSON (models produce such) fall back to
// plain text handling.

// redactArguments pseudonymises tool-call arguments and returns how many
// secrets it replaced.
func (p *Pseudonymizer) redactArguments(args string) (string, int, error) {
	if p.keyErr != nil {
		return "", 0, p.keyErr
	}
	if !utf8.ValidString(args) {
		return "", 0, fmt.Errorf("%w: tool arguments are not valid UTF-8", ErrRedactionFailed)
	}
	if !json.Valid([]byte(args)) {
		return p.redact(args, nil)
	}
	total := 0
	out, err := mapJSONStrings(args, func(s, key string) (string, error) {
		var extra []Span
		if key != "" {
			// {"password": "x"}: the key and the value are separate
			// literals, so the key's meaning is applied here.
			if kc := classifyKey(key); kc != keyNone {
				vs := 0
				if kc == keyAuthorization || kc == keyAuth || kc == keySecret {
					vs = schemeOffset(s)
				}
				if acceptValue(kc, key, s[vs:]) {
					kind, _ := valueKind(kc, key, s[vs:])
					extra = append(extra, Span{Start: vs, End: len(s), Kind: kind})
				}
			}
		}
		r, n, err := p.redact(s, extra)
		total += n
		return r, err
	})
	if err != nil {
		return "", 0, err
	}
	return out, total, nil
}

// restoreArguments restores pseudonyms in tool-call arguments a model
// produced.
func (p *Pseudonymizer) restoreArguments(args string) string {
	if !strings.Contains(args, pseudoPrefix) && !strings.Contains(args, `\u003csecret-`) {
		return args
	}
	if !json.Valid([]byte(args)) {
		return p.Restore(args)
	}
	out, err := mapJSONStrings(args, func(s, _ string) (string, error) { return p.Restore(s), nil })
	if err != nil {
		return p.Restore(args)
	}
	return out
}

// mapJSONStrings applies f to every string literal of the valid JSON text
// s, decoded. key is the decoded key when the literal is the value of an
// object member, "" otherwise (keys, array elements, top level).
func mapJSONStrings(s string, f func(str, key string) (string, error)) (string, error) {
	var b strings.Builder
	last := 0
	lastKey := ""
	prev := byte(0) // last significant byte outside string literals
	for i := 0; i < len(s); {
		c := s[i]
		if c != '"' {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				prev = c
			}
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return "", fmt.Errorf("%w: unterminated JSON string", ErrRedactionFailed)
		}
		j++
		k := j
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
			k++
		}
		isKey := k < len(s) && s[k] == ':'
		var dec string
		if err := json.Unmarshal([]byte(s[i:j]), &dec); err != nil {
			return "", fmt.Errorf("%w: JSON string: %v", ErrRedactionFailed, err)
		}
		key := ""
		if !isKey && prev == ':' {
			key = lastKey
		}
		if isKey {
			lastKey = dec
		}
		out, err := f(dec, key)
		if err != nil {
			return "", err
		}
		if out != dec {
			enc, err := encodeJSONString(out)
			if err != nil {
				return "", err
			}
			b.WriteString(s[last:i])
			b.WriteString(enc)
			last = j
		}
		prev = '"'
		i = j
	}
	if last == 0 {
		return s, nil
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// encodeJSONString encodes s as a JSON string literal without HTML escaping,
// so pseudonyms stay readable as "<secret-…>" in what is sent and audited.
func encodeJSONString(s string) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", fmt.Errorf("%w: encode JSON string: %v", ErrRedactionFailed, err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}
