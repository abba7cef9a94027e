package redact

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
	pending string // a possible pseudonym prefix, at most len("<secret-")+maxHex bytes
}

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
	cut := holdFrom(s)
	r.pending = s[cut:]
	if cut > 0 {
		r.emit(r.p.Restore(s[:cut]))
	}
}

// Flush emits whatever is held back; call it when the stream ends (also
// when it ends with an error).
func (r *StreamRestorer) Flush() {
	if r.pending != "" {
		s := r.pending
		r.pending = ""
		r.emit(r.p.Restore(s))
	}
}

// holdFrom returns where the tail of s that may still grow into a pseudonym
// starts, or len(s). Such a tail holds the last '<' of s (a pseudonym has
// exactly one), so no pseudonym can straddle the cut and restoring the two
// parts separately equals restoring the whole.
func holdFrom(s string) int {
	lt := -1
	for i := len(s) - 1; i >= 0 && len(s)-i <= len(pseudoPrefix)+maxHex; i-- {
		if s[i] == '<' {
			lt = i
			break
		}
	}
	if lt < 0 || !isPseudonymPrefix(s[lt:]) {
		return len(s)
	}
	return lt
}

// isPseudonymPrefix reports whether t is an incomplete pseudonym: "<",
// "<secr", "<secret-", "<secret-" followed by up to maxHex hex digits.
func isPseudonymPrefix(t string) bool {
	n := min(len(t), len(pseudoPrefix))
	if t[:n] != pseudoPrefix[:n] {
		return false
	}
	hex := t[n:]
	if len(hex) > maxHex {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if !isLowerHex(hex[i]) {
			return false
		}
	}
	return true
}
