package loginsight

import (
	"net/netip"
	"strings"
)

// Wildcard stands for a variable part of a template.
const Wildcard = "<*>"

// masker splits a message into whitespace tokens and replaces the parts that
// are obviously data with Wildcard before the tree sees them. The rules are
// general — they describe shapes of values, not any one log:
//
//   - a run of letters and digits is a value when it starts with a digit
//     (3200, 10000ms, 0x1f, 2h3m), is hex with a digit (b00000084, e89b),
//     has four or more digits (abc12345) or is 16+ characters with a digit;
//     a sign right before it goes with it (blk_-42 → blk_<*>);
//   - values separated only by one or two of . : - _ / , @ merge into one
//     (10.0.0.1:8080, 2013-06-10, fe80::1, 1.7.0_79 → <*>);
//   - URLs, file paths with two or more slashes, UUIDs and IPv6 addresses
//     are masked whole;
//   - in key=value the value is masked when it looks like data (digits,
//     slashes, dots, colons, @, longer than 32 bytes); short word values
//     (state=RUNNING, user=root, enabled=false) stay, so enumerations remain
//     visible and the tree can still generalise a varying word;
//   - consecutive identical masked tokens collapse into one, so lists of ids
//     ("delete blk_1 blk_2 blk_3") do not change the token count.
type masker struct {
	buf    []byte
	intern map[string]string
}

// maxIntern bounds the masker's table of repeated masked tokens.
const maxIntern = 4096

func newMasker() *masker {
	return &masker{intern: make(map[string]string)}
}

// tokens appends the masked tokens of content to dst. At most maxTokens
// are kept; a longer line keeps maxTokens-1 and ends in a Wildcard.
func (mk *masker) tokens(content string, dst []string, maxTokens int) []string {
	dst = dst[:0]
	truncated := false
	for i := 0; i < len(content); {
		for i < len(content) && content[i] <= ' ' {
			i++
		}
		if i == len(content) {
			break
		}
		j := i
		for j < len(content) && content[j] > ' ' {
			j++
		}
		if len(dst) >= maxTokens-1 && maxTokens > 0 {
			truncated = true
			break
		}
		t := mk.token(content[i:j])
		if n := len(dst); n > 0 && t == dst[n-1] && strings.Contains(t, Wildcard) {
			i = j
			continue
		}
		dst = append(dst, t)
		i = j
	}
	if truncated {
		dst = append(dst, Wildcard)
	}
	return dst
}

// token masks one token, returning it unchanged when nothing applies.
func (mk *masker) token(tok string) string {
	var digit, eq, slash bool
	colons := 0
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case isDigit(c):
			digit = true
		case c == '=':
			eq = true
		case c == '/' || c == '\\':
			slash = true
		case c == ':':
			colons++
		}
	}
	if !digit && !eq && !slash && colons < 2 {
		return tok
	}
	lead, core, trail := affixes(tok)
	if core == "" {
		return tok
	}
	switch {
	case strings.Contains(core, "://"), isPath(core), isUUID(core):
		return mk.join(lead, Wildcard, trail)
	}
	if eq {
		if k := strings.IndexByte(core, '='); k > 0 && isKey(core[:k]) {
			if !dataValue(core[k+1:]) {
				return tok
			}
			return mk.join(lead+core[:k+1], Wildcard, trail)
		}
	}
	if colons >= 2 {
		if _, err := netip.ParseAddr(core); err == nil {
			return mk.join(lead, Wildcard, trail)
		}
	}
	if !digit {
		return tok
	}
	return mk.words(tok)
}

// words masks the value-like alphanumeric runs of tok.
func (mk *masker) words(tok string) string {
	b := mk.buf[:0]
	lastMask := -1
	for i := 0; i < len(tok); {
		c := tok[i]
		if !isAlnum(c) {
			b = append(b, c)
			i++
			continue
		}
		j, digits, hexOnly := i, 0, true
		for ; j < len(tok) && isAlnum(tok[j]); j++ {
			switch d := tok[j]; {
			case isDigit(d):
				digits++
			case !((d|0x20) >= 'a' && (d|0x20) <= 'f'):
				hexOnly = false
			}
		}
		w := tok[i:j]
		i = j
		if digits == 0 || !(isDigit(w[0]) || hexOnly || digits >= 4 || len(w) >= 16) {
			b = append(b, w...)
			continue
		}
		if n := len(b); n > 0 && b[n-1] == '-' && (n == 1 || !isAlnum(b[n-2])) {
			b = b[:n-1] // the sign belongs to the number
		}
		if lastMask >= 0 && isSepRun(b[lastMask:]) {
			b = b[:lastMask] // "<*>.<*>" → "<*>"
			continue
		}
		b = append(b, Wildcard...)
		lastMask = len(b)
	}
	mk.buf = b
	return mk.str(b)
}

// join builds lead+mid+trail through the intern table.
func (mk *masker) join(lead, mid, trail string) string {
	if lead == "" && trail == "" {
		return mid
	}
	b := append(mk.buf[:0], lead...)
	b = append(b, mid...)
	b = append(b, trail...)
	mk.buf = b
	return mk.str(b)
}

// str returns b as a string, sharing one copy of each repeated masked token.
func (mk *masker) str(b []byte) string {
	if string(b) == Wildcard {
		return Wildcard
	}
	if s, ok := mk.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(mk.intern) < maxIntern && len(s) <= 64 {
		mk.intern[s] = s
	}
	return s
}

// affixes splits off leading and trailing punctuation that wraps a value.
func affixes(tok string) (lead, core, trail string) {
	i := 0
	for i < len(tok) && strings.IndexByte(`([{<"'`, tok[i]) >= 0 {
		i++
	}
	j := len(tok)
	for j > i && strings.IndexByte(`)]}>"',;.:!?`, tok[j-1]) >= 0 {
		j--
	}
	return tok[:i], tok[i:j], tok[j:]
}

func isSepRun(b []byte) bool {
	if len(b) > 2 {
		return false
	}
	for _, c := range b {
		if strings.IndexByte(".:-_/,@", c) < 0 {
			return false
		}
	}
	return true
}

// isPath: /a/b, ./a, ../a, ~/a, C:\a.
func isPath(s string) bool {
	switch {
	case strings.HasPrefix(s, "./"), strings.HasPrefix(s, "../"), strings.HasPrefix(s, "~/"):
		return true
	case len(s) > 2 && s[0] == '/':
		return strings.IndexByte(s[1:], '/') >= 0
	case len(s) > 3 && isLetter(s[0]) && s[1] == ':' && s[2] == '\\':
		return true
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isDigit(c) && !((c|0x20) >= 'a' && (c|0x20) <= 'f') {
				return false
			}
		}
	}
	return true
}

// isKey: a key of key=value — identifier characters with at least one letter.
func isKey(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c):
			letter = true
		case isDigit(c), strings.IndexByte("_.-:@[]", c) >= 0:
		default:
			return false
		}
	}
	return letter
}

// dataValue reports whether a key=value value looks like data rather than
// a word from a small set.
func dataValue(v string) bool {
	if v == "" || len(v) > 32 {
		return v != ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isDigit(c) || strings.IndexByte("/\\.:@", c) >= 0 {
			return true
		}
	}
	return false
}
