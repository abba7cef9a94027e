package redact

import "strings"

// maxKeyLen bounds how far scanKeyValues looks back for a key name.
const maxKeyLen = 128

// scanKeyValues finds the values of secret-like keys in every assignment
// syntax a troubleshooting paste contains:
//
//	KEY=value  export KEY="value"  key = value (INI)  key: value (YAML, headers)
//	"key": "value" (JSON)  {\"key\":\"value\"} (JSON inside a JSON string)
//	?user=app&password=x (query strings, JDBC)  Password=x; (ADO.NET)
//	password: |  (YAML block scalars: the indented lines below)
//
// It walks the separators ('=' and ':') once, looks left for the key and
// right for the value, so it is linear in the text and needs no
// backtracking. Only the value is reported.
func scanKeyValues(text string, out []candidate) []candidate {
	// Line bookkeeping moves forward only (keys appear in increasing
	// order), which keeps the scan linear even on one huge line.
	nlScan, ls := 0, 0 // ls: start of the current line
	lineContent := -1  // first non-blank byte of the current line, -1 if none yet
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '=' && c != ':' {
			continue
		}
		sepEnd := i + 1
		if c == ':' {
			if sepEnd < len(text) && text[sepEnd] == '=' { // :=
				sepEnd++
			} else if sepEnd < len(text) && (text[sepEnd] == ':' || text[sepEnd] == '/') { // ::, ://
				continue
			}
			if i > 0 && text[i-1] == ':' {
				continue
			}
		} else if sepEnd < len(text) && text[sepEnd] == '=' { // ==
			i++
			continue
		}

		// The key: optional spaces, an optional (escaped) closing quote, then
		// key characters.
		j := i
		spaceBeforeSep := false
		for j > 0 && (text[j-1] == ' ' || text[j-1] == '\t') {
			j--
			spaceBeforeSep = true
		}
		var q byte // quote around the key, 0 if none
		escaped := false
		if j > 0 && (text[j-1] == '"' || text[j-1] == '\'') {
			q = text[j-1]
			j--
			if j > 0 && text[j-1] == '\\' {
				j--
				escaped = true
			}
		}
		ke := j
		for j > 0 && ke-j < maxKeyLen && isKeyChar(text[j-1]) {
			j--
		}
		ks := j
		if ks == ke {
			continue
		}
		quotedKey := q != 0
		if quotedKey && !(ks > 0 && text[ks-1] == q && (!escaped || (ks > 1 && text[ks-2] == '\\'))) {
			// `error="bad token": retrying`: the quote closes something
			// else, not a quoted key.
			continue
		}
		key := text[ks:ke]
		kc := classifyKey(key)
		if kc == keyNone {
			continue
		}
		if c == ':' && ks >= 2 && text[ks-1] == '/' && text[ks-2] == '/' { // scheme://user:… is the URL rule's
			continue
		}

		for ; nlScan < ks; nlScan++ {
			switch ch := text[nlScan]; {
			case ch == '\n':
				ls, lineContent = nlScan+1, -1
			case lineContent < 0 && ch != ' ' && ch != '\t' && ch != '\r':
				lineContent = nlScan
			}
		}
		prefix := ""
		if lineContent >= 0 {
			if ks-lineContent > 8 {
				prefix = "?"
			} else {
				prefix = strings.TrimSpace(text[lineContent:ks])
			}
		}
		lineStart := prefix == "" || prefix == "-" || prefix == "#" || prefix == "export" || prefix == "set" || prefix == "ENV"
		structured := quotedKey || lineStart

		// The value.
		v := sepEnd
		for v < len(text) && (text[v] == ' ' || text[v] == '\t') {
			v++
		}
		if v >= len(text) || text[v] == '\n' || text[v] == '\r' {
			continue // empty, or a nested YAML mapping
		}
		var vs, ve int
		quoted := false
		switch {
		case text[v] == '\\' && v+1 < len(text) && text[v+1] == '"':
			vs = v + 2
			ve = vs
			for ve < len(text) && text[ve] != '\n' && !(text[ve] == '\\' && ve+1 < len(text) && text[ve+1] == '"') {
				ve++
			}
			quoted = true
		case text[v] == '"' || text[v] == '\'':
			vs = v + 1
			ve = quotedEnd(text, vs, text[v])
			quoted = true
		case (c == ':' && lineStart && !quotedKey && v > sepEnd) || (c == '=' && lineStart && spaceBeforeSep):
			// YAML, HTTP headers, INI: the value is the rest of the line.
			vs = v
			ve = restOfLine(text, vs)
			if isBlockIndicator(text[vs:ve]) {
				vs, ve = blockScalar(text, lineEnd(text, vs), ks-ls)
			}
		default:
			vs = v
			ve = unquotedEnd(text, vs)
			// "Authorization: Bearer abc" written mid-line or in a
			// header string: the credential is the word after the scheme.
			if (kc == keyAuthorization || kc == keyAuth || kc == keySecret) && authSchemes[asciiLower(text[vs:ve])] {
				w := ve
				for w < len(text) && (text[w] == ' ' || text[w] == '\t') {
					w++
				}
				if we := unquotedEnd(text, w); we > w && w > ve {
					vs, ve = w, we
				}
			}
		}
		if ve <= vs {
			continue
		}
		if kc == keyAuthorization || kc == keyAuth || kc == keySecret {
			vs += schemeOffset(text[vs:ve])
		}
		val := text[vs:ve]
		if c == ':' && !quoted && !structured {
			// Mid-line "key: value" is often prose ("invalid token:
			// signature mismatch"); only a value that looks like a
			// credential counts. After "password:" a plain word is the
			// password ("the db password: swordfish") unless it is one of
			// the words logs and people put there instead.
			if kc == keyAuth || strings.EqualFold(key, "pass") {
				continue
			}
			if isProse(val) && !(kc == keyPassword && !passwordStatusWords[asciiLower(strings.TrimRight(val, ".,!?"))]) {
				continue
			}
		}
		if c == ':' && !quotedKey && v == sepEnd && allDigits(val) {
			continue // host:port ("auth:8080", "vault-token:8200")
		}
		if !acceptValue(kc, key, val) {
			continue
		}
		kind, prio := valueKind(kc, key, val)
		out = append(out, candidate{start: vs, end: ve, prio: prio, kind: kind})
		if ve > i+1 {
			i = ve - 1
		}
	}
	return out
}

// lineEnd returns the index of the '\n' ending the line that holds i, or
// len(text).
func lineEnd(text string, i int) int {
	if k := strings.IndexByte(text[i:], '\n'); k >= 0 {
		return i + k
	}
	return len(text)
}

// quotedEnd returns where a value quoted with q that starts at i ends: at
// the closing quote, or at the end of the line if the quote is never closed
// (a truncated paste is still redacted). Double quotes honour backslash
// escapes.
func quotedEnd(text string, i int, q byte) int {
	for ; i < len(text); i++ {
		switch text[i] {
		case '\n':
			if i > 0 && text[i-1] == '\r' {
				return i - 1
			}
			return i
		case '\\':
			if q == '"' && i+1 < len(text) && text[i+1] != '\n' {
				i++
			}
		case q:
			return i
		}
	}
	return len(text)
}

// unquotedEnd returns where an unquoted value starting at i ends: at white
// space, a quote, or a separator of query strings, connection strings and
// lists. Closing brackets the value never opened are trimmed
// (fn(password=x) → x).
func unquotedEnd(text string, i int) int {
	s := i
	for i < len(text) {
		c := text[i]
		if c <= ' ' || c == '"' || c == '\'' || c == '`' || c == ',' || c == ';' || c == '&' || c == '\\' {
			break
		}
		i++
	}
	// Trim closing brackets the value never opened: one count per
	// bracket kind, so this stays linear in the value.
	opens := [3]int{}
	closes := [3]int{}
	for k := s; k < i; k++ {
		if b := strings.IndexByte("([{", text[k]); b >= 0 {
			opens[b]++
		} else if b := strings.IndexByte(")]}", text[k]); b >= 0 {
			closes[b]++
		}
	}
	for i > s {
		b := strings.IndexByte(")]}", text[i-1])
		if b < 0 || closes[b] <= opens[b] {
			break
		}
		closes[b]--
		i--
	}
	return i
}

// restOfLine returns the end of a YAML/INI/header value starting at i: the
// end of the line without trailing blanks and without a " # comment".
func restOfLine(text string, i int) int {
	e := lineEnd(text, i)
	line := text[i:e]
	for _, cm := range []string{" #", "\t#", " ;", "\t;"} {
		if k := strings.Index(line, cm); k >= 0 {
			line = line[:k]
		}
	}
	line = strings.TrimRight(line, " \t\r")
	return i + len(line)
}

// isBlockIndicator reports whether a YAML value is "|", ">", "|-", ">+2" …
func isBlockIndicator(v string) bool {
	if v == "" || (v[0] != '|' && v[0] != '>') || len(v) > 3 {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] != '-' && v[i] != '+' && !isDigit(v[i]) {
			return false
		}
	}
	return true
}

// blockScalar returns the extent of the YAML block scalar whose lines
// follow the newline at nl and are indented deeper than keyCol: from the
// first content character to the end of the last non-blank line.
func blockScalar(text string, nl, keyCol int) (int, int) {
	start, end := -1, -1
	for p := nl + 1; nl < len(text) && p <= len(text); {
		e := lineEnd(text, p)
		line := text[p:e]
		ind := 0
		for ind < len(line) && (line[ind] == ' ' || line[ind] == '\t') {
			ind++
		}
		if strings.TrimRight(line[ind:], "\r") != "" {
			if ind <= keyCol {
				break
			}
			if start < 0 {
				start = p + ind
			}
			end = p + len(strings.TrimRight(line, " \t\r"))
		}
		if e == len(text) {
			break
		}
		p = e + 1
	}
	if start < 0 {
		return 0, 0
	}
	return start, end
}
