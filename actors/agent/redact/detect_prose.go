package redact

import "strings"

// proseLinks are the words that may stand between "password" and the
// password in a sentence: "the password is x", "password was changed to x",
// "password should be x". "to" counts only after set/changed/reset/updated:
// "the password to db-01" names a host, not a password.
var proseLinks = setOf("is", "was", "are", "were", "be", "been", "now", "still", "should", "would", "will",
	"must", "set", "changed", "reset", "updated", "=")

var proseSetters = setOf("set", "changed", "reset", "updated")

// proseWords are the words after which a sentence may give a password.
var proseWords = setOf("password", "passwd", "passphrase", "passcode")

// maxProseSecret bounds a password written in a sentence.
const maxProseSecret = 128

// scanProsePasswords finds a password written in a sentence or a .netrc
// line, the one form no key=value syntax marks: "logged in with password
// hunter2", "the db password is 'Sup3r!'", "machine h login u password x".
// A word counts only when it looks like a password, not like English: it is
// quoted, or mixes letters and digits, or holds a symbol, or is six or more
// digits (a .netrc line takes any word). "Failed password for invalid user"
// and "password is incorrect" stay.
func scanProsePasswords(text string, out []candidate) []candidate {
	var ln netrcLines
	for from := 0; from < len(text); {
		k := indexFold(text[from:], "pass")
		if k < 0 {
			break
		}
		ws := from + k
		we := ws
		for we < len(text) && isLetter(text[we]) {
			we++
		}
		from = we
		if ws > 0 && (isAlnum(text[ws-1]) || text[ws-1] == '_' || text[ws-1] == '-' || text[ws-1] == '.') {
			continue
		}
		if !proseWords[asciiLower(text[ws:we])] || we >= len(text) || (text[we] != ' ' && text[we] != '\t') {
			continue
		}
		netrc := ln.at(text, ws)
		// Link words, then the candidate.
		j := skipBlanks(text, we)
		setter := false
		for n := 0; n < 4 && !netrc; n++ {
			e := j
			for e < len(text) && (isLetter(text[e]) || text[e] == '=') {
				e++
			}
			if e == j || (e < len(text) && !isBlank(text[e])) {
				break
			}
			w := asciiLower(text[j:e])
			if (w == "to" && !setter) || (w != "to" && !proseLinks[w]) {
				break
			}
			setter = setter || proseSetters[w]
			j = skipBlanks(text, e)
		}
		if j >= len(text) {
			break
		}
		vs, ve, quoted := proseValue(text, j)
		if ve <= vs || ve-vs > maxProseSecret {
			continue
		}
		val := text[vs:ve]
		if isPlaceholder(val) || isPathLike(val) || strings.Contains(val, "://") {
			continue
		}
		if !quoted && !netrc && !looksLikePassword(val) {
			continue
		}
		out = append(out, candidate{start: vs, end: ve, prio: prioKeyValue, kind: KindPassword})
		from = ve
	}
	return out
}

// proseValue returns the word at j: inside quotes when it is quoted (the
// straight and typographic quotes people paste), else up to a blank, with
// trailing sentence punctuation left out.
func proseValue(text string, j int) (int, int, bool) {
	for _, qs := range [][2]string{{`"`, `"`}, {`'`, `'`}, {"`", "`"}, {"“", "”"}, {"‘", "’"}} {
		if strings.HasPrefix(text[j:], qs[0]) {
			vs := j + len(qs[0])
			window := text[vs:min(len(text), vs+maxProseSecret+len(qs[1]))]
			k := strings.Index(window, qs[1])
			if k < 0 || strings.IndexByte(window[:k], '\n') >= 0 {
				return 0, 0, false
			}
			return vs, vs + k, true
		}
	}
	ve := j
	for ve < len(text) && !isBlank(text[ve]) && text[ve] != '\n' && text[ve] != '\r' {
		ve++
	}
	for ve > j && strings.IndexByte(".,;:)", text[ve-1]) >= 0 {
		ve--
	}
	return j, ve, false
}

// looksLikePassword reports whether an unquoted word from a sentence is a
// password rather than a word: six or more characters with letters and
// digits, a symbol, or only digits.
func looksLikePassword(v string) bool {
	if len(v) < 6 {
		return false
	}
	var letter, digit, symbol bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isLetter(c):
			letter = true
		case isDigit(c):
			digit = true
		case strings.IndexByte("!@#$%^&+=?~|<>{}[]", c) >= 0: // not '*': markdown's **emphasis**
			symbol = true
		}
	}
	return (letter && digit) || symbol || (digit && allDigits(v))
}

// netrcLines answers, for positions that only move forward, whether the
// line holding a position is a .netrc entry ("machine host login user
// password secret", or "default login …"). Each line is looked at once, so
// a text that is one huge line costs no more than many short ones.
type netrcLines struct {
	start, end int // the line last looked at: [start, end)
	netrc      bool
	seen       bool
}

func (n *netrcLines) at(text string, i int) bool {
	if n.seen && i >= n.start && i < n.end {
		return n.netrc
	}
	ls := 0
	if n.seen && i >= n.end {
		ls = n.end
	}
	if k := strings.LastIndexByte(text[ls:i], '\n'); k >= 0 {
		ls += k + 1
	}
	le := lineEnd(text, i)
	line := strings.TrimLeft(text[ls:le], " \t")
	n.start, n.end, n.seen = ls, le, true
	n.netrc = (strings.HasPrefix(line, "machine ") || strings.HasPrefix(line, "default ")) && strings.Contains(line, " login ")
	return n.netrc
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func skipBlanks(text string, i int) int {
	for i < len(text) && isBlank(text[i]) {
		i++
	}
	return i
}

// scanPgpass finds the password of a PostgreSQL password file line,
// host:port:database:user:password, which has no key to mark it. A line
// counts only in exactly that shape: five non-empty fields without blanks,
// a port (or *) second, letters in the host, database and user fields, so
// times, MAC and IPv6 addresses do not.
func scanPgpass(text string, out []candidate) []candidate {
	for ls := 0; ls < len(text); {
		le := lineEnd(text, ls)
		line := strings.TrimRight(text[ls:le], "\r")
		if strings.Count(line, ":") == 4 && !strings.ContainsAny(line, " \t") {
			f := strings.Split(line, ":")
			if hasLetterOrStar(f[0]) && (f[1] == "*" || allDigits(f[1])) && hasLetterOrStar(f[2]) && hasLetterOrStar(f[3]) &&
				f[4] != "" && !isPlaceholder(f[4]) {
				vs := ls + len(line) - len(f[4])
				out = append(out, candidate{start: vs, end: vs + len(f[4]), prio: prioKeyValue, kind: KindPassword})
			}
		}
		ls = le + 1
	}
	return out
}

func hasLetterOrStar(s string) bool {
	for i := 0; i < len(s); i++ {
		if isLetter(s[i]) || s[i] == '*' {
			return true
		}
	}
	return false
}

// passwordDirectives are configuration directives whose argument is a
// password whatever it looks like (redis.conf: requirepass foobared),
// wherever they stand in a line ("redis is slow; requirepass Zx9s…").
var passwordDirectives = []string{"requirepass", "masterauth"}

// scanDirectives finds the value of a configuration directive written as
// "name value" on its own line, the syntax of redis.conf, sshd_config,
// pgbouncer and many others, which has no '=' or ':' to mark it: the line
// is exactly a secret-like name and one value ("requirepass Zx9s…",
// "api_key 3f9a0c…"). The value must look like a credential (letters with
// digits, or a symbol), so "Secret rotated" and "Token expired" stay; the
// passwordDirectives take any value, in any position.
func scanDirectives(text string, out []candidate) []candidate {
	for ls := 0; ls < len(text); {
		le := lineEnd(text, ls)
		out = scanDirective(text, ls, le, out)
		ls = le + 1
	}
	for _, w := range passwordDirectives {
		for from := 0; from < len(text); {
			k := indexFold(text[from:], w)
			if k < 0 {
				break
			}
			ws := from + k
			we := ws + len(w)
			from = we
			if (ws > 0 && isWordByte(text[ws-1])) || we >= len(text) || !isBlank(text[we]) {
				continue
			}
			vs, ve, _ := proseValue(text, skipBlanks(text, we))
			if ve <= vs || ve-vs > maxProseSecret || isPlaceholder(text[vs:ve]) {
				continue
			}
			out = append(out, candidate{start: vs, end: ve, prio: prioKeyValue, kind: KindPassword})
			from = ve
		}
	}
	return out
}

func scanDirective(text string, ls, le int, out []candidate) []candidate {
	i := skipBlanks(text, ls)
	ks := i
	for i < le && isKeyChar(text[i]) {
		i++
	}
	ke := i
	if ke == ks || ke-ks > maxKeyLen || i >= le || !isBlank(text[i]) {
		return out
	}
	key := text[ks:ke]
	kc := classifyKey(key)
	if kc != keyPassword && kc != keySecret {
		return out
	}
	vs := skipBlanks(text, i)
	ve := le
	for ve > vs && (text[ve-1] == ' ' || text[ve-1] == '\t' || text[ve-1] == '\r') {
		ve--
	}
	if ve-vs >= 2 && (text[vs] == '"' || text[vs] == '\'') && text[ve-1] == text[vs] {
		vs, ve = vs+1, ve-1
	} else if strings.ContainsAny(text[vs:ve], " \t") {
		return out // a sentence, not a directive
	}
	if ve <= vs || ve-vs > maxProseSecret {
		return out
	}
	val := text[vs:ve]
	if isPlaceholder(val) || isPathLike(val) || strings.Contains(val, "://") || !looksLikePassword(val) {
		return out
	}
	kind, prio := valueKind(kc, key, val)
	return append(out, candidate{start: vs, end: ve, prio: prio, kind: kind})
}
