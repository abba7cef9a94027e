package index

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTokenRunes bounds a single token. Longer runs (base64 blobs, minified
// code) are noise for BM25; their connector-separated parts are still indexed.
// 64 keeps sha256 hex digests, which are useful search keys (image digests).
const maxTokenRunes = 64

// tokenize appends the index terms of text to out and returns it.
//
// A word is a maximal run of letters and digits, possibly joined by single
// connectors (. _ - / :) that sit between two letters or digits. Apostrophes
// inside a word are dropped ("don't" → "dont"). Each word yields:
//
//   - for a compound ("nginx.conf", "max_connections", "10.0.0.1",
//     "kube-apiserver"): the whole compound, lowercased and unstemmed, then
//     each part as a plain word;
//   - for a mixed-case word ("OOMKilled", "CrashLoopBackOff"): the whole
//     word lowercased and unstemmed, then each camel-case part as a simple
//     word;
//   - otherwise the simple word: lowercased, dropped if it is a stop word or
//     a single rune, stemmed unless it contains a digit ("k8s", "502", "http2"
//     are kept as they are).
//
// Queries and documents go through the same function, so the rules only need
// to be consistent, not linguistically right.
func tokenize(text string, out []string) []string {
	var (
		word  strings.Builder // the word so far, original case, apostrophes dropped
		parts []int           // byte offsets in word where a connector was
	)
	flush := func() {
		if word.Len() > 0 {
			out = emitWord(word.String(), parts, out)
		}
		word.Reset()
		parts = parts[:0]
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case isWordRune(r):
			word.WriteRune(r)
		case word.Len() > 0 && (isConnector(r) || isApostrophe(r)):
			next, _ := utf8.DecodeRuneInString(text[i:])
			if !isWordRune(next) {
				flush()
				continue
			}
			if isConnector(r) {
				parts = append(parts, word.Len())
				word.WriteRune(r)
			}
		default:
			flush()
		}
	}
	flush()
	return out
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func isConnector(r rune) bool {
	switch r {
	case '.', '_', '-', '/', ':':
		return true
	}
	return false
}

func isApostrophe(r rune) bool { return r == '\'' || r == '’' }

// emitWord emits the terms of one word; cuts are the byte offsets of its
// connectors.
func emitWord(w string, cuts []int, out []string) []string {
	if len(cuts) == 0 {
		return emitPlain(w, out)
	}
	if n := utf8.RuneCountInString(w); n >= 2 && n <= maxTokenRunes {
		out = append(out, strings.ToLower(w))
	}
	start := 0
	for _, c := range cuts {
		out = emitPlain(w[start:c], out)
		start = c + 1 // connectors are all one byte
	}
	return emitPlain(w[start:], out)
}

// emitPlain emits a word without connectors, splitting camel case.
func emitPlain(w string, out []string) []string {
	camel := camelParts(w)
	if len(camel) <= 1 {
		return emitSimple(strings.ToLower(w), out)
	}
	if utf8.RuneCountInString(w) <= maxTokenRunes {
		out = append(out, strings.ToLower(w))
	}
	for _, p := range camel {
		out = emitSimple(strings.ToLower(p), out)
	}
	return out
}

// emitSimple emits one lowercased word: stop words and single runes are
// dropped, words with digits are kept verbatim, the rest are stemmed.
func emitSimple(w string, out []string) []string {
	n := utf8.RuneCountInString(w)
	if n < 2 || n > maxTokenRunes || stopWords[w] {
		return out
	}
	return append(out, stem(w))
}

// camelParts splits a word at case changes: before an upper-case letter that
// follows a lower-case one ("getURL" → get|URL) and before the last letter
// of an upper-case run that is followed by at least two lower-case letters
// ("OOMKilled" → OOM|Killed, but "IPv4" stays whole). Digits never split
// ("k8s", "http2"). A word with no split comes back as one part.
func camelParts(w string) []string {
	rs := []rune(w)
	var parts []string
	start := 0
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		split := false
		switch {
		case unicode.IsLower(prev) && unicode.IsUpper(cur):
			split = true
		case unicode.IsUpper(prev) && unicode.IsUpper(cur) &&
			i+2 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsLower(rs[i+2]):
			split = true
		}
		if split {
			parts = append(parts, string(rs[start:i]))
			start = i
		}
	}
	if start == 0 {
		return []string{w}
	}
	return append(parts, string(rs[start:]))
}

// stem is a deliberately small suffix stripper for English plurals and the
// -ing/-ed forms that dominate operational text ("restarts", "restarting",
// "restarted" → "restart"; "caches", "cached", "caching" → "cach"). It only
// touches ASCII words of four or more letters. A final silent "e" is dropped
// so that "time"/"timed"/"timing" meet at "tim".
func stem(w string) string {
	if len(w) < 4 || !isASCIILetters(w) {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
	case strings.HasSuffix(w, "s"):
		w = w[:len(w)-1]
	}
	switch {
	case strings.HasSuffix(w, "ied") && len(w) > 4:
		w = w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ing") && stemmable(w[:len(w)-3]):
		w = undouble(w[:len(w)-3])
	case strings.HasSuffix(w, "ed") && stemmable(w[:len(w)-2]):
		w = undouble(w[:len(w)-2])
	}
	if len(w) >= 4 && w[len(w)-1] == 'e' && w[len(w)-2] != 'e' {
		w = w[:len(w)-1]
	}
	return w
}

// stemmable reports whether s can stand as a stem: three letters or more
// with a vowel ("running" → "runn", but "string" and "bring" stay).
func stemmable(s string) bool {
	return len(s) >= 3 && strings.ContainsAny(s, "aeiouy")
}

// undouble drops one of a doubled final consonant ("runn" → "run",
// "stopp" → "stop"), except l, s and z ("kill", "miss", "buzz").
func undouble(s string) string {
	n := len(s)
	if n >= 2 && s[n-1] == s[n-2] && !strings.ContainsRune("aeiouylsz", rune(s[n-1])) {
		return s[:n-1]
	}
	return s
}

func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// stopWords are common English function words. Negations and the particles
// that carry meaning in operations ("not", "no", "up", "down", "off", "out",
// "over") are deliberately kept: "not found" and "out of memory" must match.
var stopWords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(`
		a about above after again against all also am an and any are as at
		be because been before being below between both but by
		can could did do does doing during each few for from further
		had has have having he her here hers herself him himself his how
		i if in into is it its itself just me more most my myself nor
		of on once only or other our ours ourselves own same she should so
		some such than that the their theirs them themselves then there
		these they this those through to too under until very
		was we were what when where which while who whom why will with
		would you your yours yourself yourselves`) {
		m[w] = true
	}
	return m
}()
