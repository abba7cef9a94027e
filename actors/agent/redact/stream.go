package redact

import "strings"

// StreamRestorer restores pseudonyms in model output that arrives in
// fragments, where a pseudonym may be split across fragments. It emits
// restored text as early as possible and holds back only a tail that could
// still become a pseudonym ("<", "<sec", "<secret-3f9").
//
// A StreamRestorer serves one stream: Write and Flush must not be called
// concurrently (an llm.Client calls onDelta sequentially). It reads the
// Pseudonymizer's table under its lock, so pseudonyms created while the
// stream runs are restored too.
type StreamRestorer struct {
	p       *Pseudonymizer
	emit    func(string)
	pending string // a possible pseudonym prefix, at most maxHold bytes
	before  byte   // the last byte emitted (0: none yet)
}

// maxHold is the longest tail that can still grow into a pseudonym: '<',
// "secret-" and maxHex digits.
const maxHold = len(pseudoPrefix) + maxHex

// NewStreamRestorer returns a StreamRestorer that passes restored text to
// emit. A nil emit discards it.
func (p *Pseudonymizer) NewStreamRestorer(emit func(string)) *StreamRestorer {
	if emit == nil {
		emit = func(string) {}
	}
	return &StreamRestorer{p: p, emit: emit}
}

// Write takes the next fragment of model output.
func (r *StreamRestorer) Write(fragment string) {
	if fragment == "" {
		return
	}
	s := r.pending + fragment
	cut := holdFrom(s, r.before)
	r.pending = s[cut:]
	if cut > 0 {
		r.emit(r.p.restore(s[:cut], r.before))
		r.before = s[cut-1]
	}
}

// Flush emits whatever is held back; call it when the stream ends (also
// when it ends with an error).
func (r *StreamRestorer) Flush() {
	if r.pending != "" {
		s := r.pending
		r.pending = ""
		r.emit(r.p.restore(s, r.before))
		r.before = s[len(s)-1]
	}
}

// holdFrom returns where the tail of s that may still grow into a pseudonym
// starts, or len(s); before is the byte emitted before s. The tail is the
// earliest one that could: "<", "<sec", "<secret-3f9", "SECRET-3F9A1C"
// (more digits or a '>' may follow) or " s" (a bracketless one may start).
// Restore reads a pseudonym only where it starts at such a place, so no
// pseudonym can straddle the cut and restoring the two parts separately
// (the second knowing the byte before it) equals restoring the whole.
func holdFrom(s string, before byte) int {
	for i := max(0, len(s)-maxHold); i < len(s); i++ {
		prev := before
		if i > 0 {
			prev = s[i-1]
		}
		if isPseudonymPrefix(s[i:], prev) {
			return i
		}
	}
	return len(s)
}

// isPseudonymPrefix reports whether t, which follows the byte prev, may
// still grow into a pseudonym Restore reads: "<", "<secr", "<secret-" or
// "<SECRET-" followed by up to maxHex hex digits (and, after at least
// minHex of them, a '.', '-' or '/' that the next byte may make part of a
// name), or the same without the '<' when prev does not belong to a word.
func isPseudonymPrefix(t string, prev byte) bool {
	if t[0] == '<' {
		t = t[1:]
	} else if isWordByte(prev) || prev == '<' {
		return false
	}
	n := min(len(t), len(pseudoWord))
	if !strings.EqualFold(t[:n], pseudoWord[:n]) {
		return false
	}
	hex := t[n:]
	if n == len(pseudoWord) && len(hex) > minHex {
		// "secret-3f9a1c." at the end: whether the '.' ends a sentence or
		// continues a name depends on the byte still to come.
		if c := hex[len(hex)-1]; c == '.' || c == '-' || c == '/' {
			hex = hex[:len(hex)-1]
		}
	}
	if len(hex) > maxHex {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if !isHexAnyCase(hex[i]) {
			return false
		}
	}
	return true
}
