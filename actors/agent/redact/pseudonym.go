package redact

import (
	"container/list"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrRedactionFailed means a text could not be pseudonymised safely (invalid
// UTF-8, a missing or short case key, an internal inconsistency). Callers
// must not send the text anywhere: fail the turn.
var ErrRedactionFailed = errors.New("redact: redaction failed")

// MinCaseKeyLen is the shortest case key NewPseudonymizer accepts.
const MinCaseKeyLen = 16

// Pseudonym syntax: "<secret-" + 6..64 lower-case hex digits + ">".
const (
	pseudoPrefix = "<secret-"
	pseudoSuffix = '>'
	minHex       = 6
	maxHex       = 64
)

// pseudoLengths are the hex lengths tried in order when shorter pseudonyms
// are taken by other secrets of the case.
var pseudoLengths = [...]int{6, 8, 10, 12, 16, 24, 32}

// Memory bounds of the pseudonym → original table; the least recently used
// entries are forgotten first (their pseudonyms then stay unrestored, which
// shows a placeholder to the user but never leaks anything).
const (
	defaultMaxEntries = 4096
	defaultMaxBytes   = 4 << 20
)

// Options tunes a Pseudonymizer.
type Options struct {
	// Emails also replaces e-mail addresses (they are personal data, not
	// credentials, and often the subject of a troubleshooting case, so
	// they are kept by default).
	Emails bool
}

// Pseudonymizer replaces the secrets of one case with stable pseudonyms and
// restores them. See the package documentation for the contract.
type Pseudonymizer struct {
	key    []byte
	keyErr error
	opts   Options

	mu         sync.Mutex
	byPseudo   map[string]*list.Element // of *entry
	byOrig     map[string]*list.Element
	lru        *list.List // front: most recently used
	bytes      int        // sum of len(original) in the table
	maxEntries int
	maxBytes   int
}

type entry struct {
	pseudo, original string
}

// NewPseudonymizer returns the Pseudonymizer of one case. caseKey is a
// per-case secret of at least MinCaseKeyLen bytes (derive it from a node
// secret and the case id); it is copied. With a shorter key every Redact
// fails with ErrRedactionFailed instead of pseudonymising weakly.
func NewPseudonymizer(caseKey []byte, opts Options) *Pseudonymizer {
	p := &Pseudonymizer{
		key:        append([]byte(nil), caseKey...),
		opts:       opts,
		byPseudo:   make(map[string]*list.Element),
		byOrig:     make(map[string]*list.Element),
		lru:        list.New(),
		maxEntries: defaultMaxEntries,
		maxBytes:   defaultMaxBytes,
	}
	if len(caseKey) < MinCaseKeyLen {
		p.keyErr = fmt.Errorf("%w: case key has %d bytes, need at least %d", ErrRedactionFailed, len(caseKey), MinCaseKeyLen)
	}
	return p
}

// Redact returns text with every secret replaced by its pseudonym
// "<secret-XXXXXX>", where XXXXXX are the first hex digits of
// HMAC-SHA256(caseKey, secret): the same secret gets the same pseudonym in
// every turn of the case, other cases get other pseudonyms, and nothing
// but the case key is needed to reproduce them. A text that already
// contains something shaped like a pseudonym gets that replaced too, so
// Restore(Redact(s)) == s always holds. On error the returned text is
// empty and the error matches ErrRedactionFailed.
func (p *Pseudonymizer) Redact(text string) (string, error) {
	out, _, err := p.redact(text, nil)
	return out, err
}

// redact pseudonymises text, treating the extra spans as secrets too, and
// also returns how many secrets it replaced.
func (p *Pseudonymizer) redact(text string, extra []Span) (string, int, error) {
	if p.keyErr != nil {
		return "", 0, p.keyErr
	}
	if !utf8.ValidString(text) {
		return "", 0, fmt.Errorf("%w: text is not valid UTF-8", ErrRedactionFailed)
	}
	spans := detect(text, p.opts.Emails)
	if lit := p.literalShapes(text); len(lit) > 0 || len(extra) > 0 {
		spans = union(spans, lit, extra)
	}
	if len(spans) == 0 {
		return text, 0, nil
	}
	if err := checkSpans(text, spans); err != nil {
		return "", 0, err
	}
	var b strings.Builder
	b.Grow(len(text) + 8*len(spans))
	p.mu.Lock()
	defer p.mu.Unlock()
	last := 0
	for _, s := range spans {
		ps, err := p.pseudonymLocked(text[s.Start:s.End])
		if err != nil {
			return "", 0, err
		}
		b.WriteString(text[last:s.Start])
		b.WriteString(ps)
		last = s.End
	}
	b.WriteString(text[last:])
	return b.String(), len(spans), nil
}

// checkSpans verifies what the detectors produced before anything is
// replaced: in bounds, non-empty, sorted, disjoint, on UTF-8 boundaries.
func checkSpans(text string, spans []Span) error {
	prev := 0
	for _, s := range spans {
		if s.Start < prev || s.End <= s.Start || s.End > len(text) ||
			!utf8.ValidString(text[s.Start:s.End]) {
			return fmt.Errorf("%w: inconsistent span [%d,%d) of kind %s", ErrRedactionFailed, s.Start, s.End, s.Kind)
		}
		prev = s.End
	}
	return nil
}

// union merges sorted span lists; overlapping spans become one.
func union(lists ...[]Span) []Span {
	var c []candidate
	for _, l := range lists {
		for _, s := range l {
			c = append(c, candidate{start: s.Start, end: s.End, kind: s.Kind})
		}
	}
	return merge(c)
}

// pseudonymLocked returns the pseudonym of secret, creating it if needed.
func (p *Pseudonymizer) pseudonymLocked(secret string) (string, error) {
	if el, ok := p.byOrig[secret]; ok {
		p.lru.MoveToFront(el)
		return el.Value.(*entry).pseudo, nil
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(secret))
	h := hex.EncodeToString(m.Sum(nil))
	for _, n := range pseudoLengths {
		ps := pseudoPrefix + h[:n] + string(pseudoSuffix)
		if _, taken := p.byPseudo[ps]; taken {
			continue // another secret of this case has it: lengthen
		}
		p.addLocked(ps, secret)
		return ps, nil
	}
	return "", fmt.Errorf("%w: pseudonym collision", ErrRedactionFailed)
}

func (p *Pseudonymizer) addLocked(ps, secret string) {
	// secret is a substring of the caller's text: copy it, or the table
	// would pin every text it ever saw.
	secret = strings.Clone(secret)
	el := p.lru.PushFront(&entry{pseudo: ps, original: secret})
	p.byPseudo[ps] = el
	p.byOrig[secret] = el
	p.bytes += len(secret)
	for p.lru.Len() > 1 && (p.lru.Len() > p.maxEntries || p.bytes > p.maxBytes) {
		old := p.lru.Back()
		e := old.Value.(*entry)
		p.lru.Remove(old)
		delete(p.byPseudo, e.pseudo)
		delete(p.byOrig, e.original)
		p.bytes -= len(e.original)
	}
}

// Restore replaces the pseudonyms this Pseudonymizer handed out with their
// originals in one left-to-right pass. It also recognises the ways a model
// rewrites one: upper case (<SECRET-3F9A1C>), and a missing bracket or both
// (secret-3f9a1c, where the character before is not part of a word such as
// db-secret-…). Unknown pseudonyms (invented by a model, or forgotten under
// the memory bound) are left as they are.
func (p *Pseudonymizer) Restore(text string) string {
	return p.restore(text, 0)
}

// restore is Restore for a text that follows the byte before (0: nothing),
// which decides whether a bracketless pseudonym at its start stands alone.
func (p *Pseudonymizer) restore(text string, before byte) string {
	k := indexFold(text, pseudoWord)
	if k < 0 {
		return text
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	last := 0
	for k >= 0 {
		next := k + 1
		if s, e, canon, ok := loosePseudonymAt(text, k, before); ok && s >= last {
			if el, found := p.byPseudo[canon]; found {
				if b.Len() == 0 {
					b.Grow(len(text))
				}
				b.WriteString(text[last:s])
				b.WriteString(el.Value.(*entry).original)
				last = e
				next = e
			}
		}
		if next >= len(text) {
			break
		}
		if k = indexFold(text[next:], pseudoWord); k >= 0 {
			k += next
		}
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// pseudoWord is the part of a pseudonym a model keeps when it rewrites one.
const pseudoWord = "secret-"

// loosePseudonymAt reads the pseudonym, exact or as a model may rewrite it,
// whose "secret-" (in any case) starts at k: minHex..maxHex hex digits in
// any case, with or without '<' before and '>' after. Without '<' the byte
// before (text[k-1], or before at k = 0) must not belong to a word, and
// without '>' the byte after must not either. It returns the extent,
// brackets included, and the pseudonym in its exact form.
func loosePseudonymAt(text string, k int, before byte) (s, e int, canon string, ok bool) {
	h := k + len(pseudoWord)
	j := h
	for j < len(text) && j-h <= maxHex && isHexAnyCase(text[j]) {
		j++
	}
	if n := j - h; n < minHex || n > maxHex {
		return 0, 0, "", false
	}
	s, e = k, j
	prev := before
	if k > 0 {
		prev = text[k-1]
	}
	if prev == '<' && k > 0 {
		s = k - 1
	} else if isWordByte(prev) {
		return 0, 0, "", false
	}
	if j < len(text) && text[j] == pseudoSuffix {
		e = j + 1
	} else if continuesName(text, j) {
		return 0, 0, "", false
	}
	return s, e, pseudoPrefix + strings.ToLower(text[h:j]) + string(pseudoSuffix), true
}

// isWordByte reports whether c, before a pseudonym, makes it part of a
// name (db-secret-3f9a1c, x.secret-…, /etc/secret-…).
func isWordByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/' }

// continuesName reports whether text[j:], right after a pseudonym's digits,
// makes it part of a longer name: a letter, digit or '_', or '.', '-' or
// '/' followed by one (secret-3f9a1c.example.com). A sentence's full stop
// does not.
func continuesName(text string, j int) bool {
	if j >= len(text) {
		return false
	}
	c := text[j]
	if isAlnum(c) || c == '_' {
		return true
	}
	return (c == '.' || c == '-' || c == '/') && j+1 < len(text) && isAlnum(text[j+1])
}

func isHexAnyCase(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') }

// Count returns how many pseudonyms the Pseudonymizer can currently
// restore.
func (p *Pseudonymizer) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

// literalShapes returns the strings already in text that Restore would
// turn into a secret: every pseudonym in its exact form, and the rewritten
// forms (SECRET-3F9A1C, secret-3f9a1c) of this Pseudonymizer's own.
// Redacting them as literals keeps Restore(Redact(s)) == s.
func (p *Pseudonymizer) literalShapes(text string) []Span {
	var out []Span
	for i := 0; i < len(text); {
		k := indexFold(text[i:], pseudoWord)
		if k < 0 {
			break
		}
		k += i
		i = k + 1
		s, e, canon, ok := loosePseudonymAt(text, k, 0)
		if !ok {
			continue
		}
		found := text[s:e] == canon
		if !found {
			p.mu.Lock()
			_, found = p.byPseudo[canon]
			p.mu.Unlock()
		}
		if found {
			out = append(out, Span{Start: s, End: e, Kind: "pseudonym"})
			i = e
		}
	}
	return out
}
