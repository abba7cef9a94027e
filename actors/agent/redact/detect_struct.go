package redact

import (
	"math"
	"regexp"
	"strings"
)

const (
	pemBegin = "-----BEGIN "
	pemEnd   = "-----END "
	pemDash  = "-----"
)

// scanPrivateKeys reports whole PEM private-key blocks (RSA, EC, DSA,
// OPENSSH, ENCRYPTED, PKCS#8, PGP … PRIVATE KEY [BLOCK]), BEGIN line to END
// line, also when written with escaped newlines inside a JSON string. A
// block whose END line is missing (a truncated paste) is redacted up to the
// last line that still looks like key material. Certificates and public
// keys are not secrets and are left alone.
func scanPrivateKeys(text string, out []candidate) []candidate {
	if !strings.Contains(text, "PRIVATE KEY") {
		return out
	}
	nextEnd := -2 // index of the next "-----END ", -1 if there is none; -2 not yet searched
	for i := 0; ; {
		k := strings.Index(text[i:], pemBegin)
		if k < 0 {
			return out
		}
		s := i + k
		label, body, ok := pemLabel(text, s+len(pemBegin))
		if !ok || !isPrivateKeyLabel(label) {
			i = s + len(pemBegin)
			continue
		}
		if nextEnd != -1 && nextEnd < body {
			if k := strings.Index(text[body:], pemEnd); k >= 0 {
				nextEnd = body + k
			} else {
				nextEnd = -1
			}
		}
		e := -1
		if nextEnd >= 0 {
			if l, after, ok := pemLabel(text, nextEnd+len(pemEnd)); ok && isPrivateKeyLabel(l) {
				e = after
			}
		}
		if e < 0 {
			e = truncatedPEMEnd(text, body)
		}
		out = append(out, candidate{start: s, end: e, prio: prioPrivateKey, kind: KindPrivateKey})
		i = e
	}
}

// pemLabel reads "RSA PRIVATE KEY-----" at i and returns the label and the
// index after the dashes.
func pemLabel(text string, i int) (string, int, bool) {
	j := i
	for j < len(text) && j-i <= 48 && (isUpper(text[j]) || isDigit(text[j]) || text[j] == ' ') {
		j++
	}
	if j == i || !strings.HasPrefix(text[j:], pemDash) {
		return "", 0, false
	}
	return text[i:j], j + len(pemDash), true
}

func isPrivateKeyLabel(l string) bool {
	return strings.HasSuffix(l, "PRIVATE KEY") || strings.HasSuffix(l, "PRIVATE KEY BLOCK")
}

// truncatedPEMEnd follows the body of a PEM block that has no END line:
// lines of base64 (and the Proc-Type/DEK-Info headers of encrypted keys),
// separated by real or escaped ("\n") newlines.
func truncatedPEMEnd(text string, body int) int {
	e := body
	for p := body; ; {
		q := p
		switch {
		case strings.HasPrefix(text[q:], "\r\n"):
			q += 2
		case strings.HasPrefix(text[q:], "\n"), strings.HasPrefix(text[q:], "\r"):
			q++
		case strings.HasPrefix(text[q:], `\r\n`):
			q += 4
		case strings.HasPrefix(text[q:], `\n`):
			q += 2
		default:
			return e
		}
		r := q
		if strings.HasPrefix(text[q:], "Proc-Type:") || strings.HasPrefix(text[q:], "DEK-Info:") {
			for r < len(text) && text[r] != '\n' && text[r] != '\r' && text[r] != '\\' {
				r++
			}
		} else {
			for r < len(text) && (isAlnum(text[r]) || text[r] == '+' || text[r] == '/' || text[r] == '=') {
				r++
			}
		}
		if r == q {
			return e
		}
		if r < len(text) && text[r] != '\n' && text[r] != '\r' && text[r] != '\\' {
			return e // prose, not key material: stop before it
		}
		e, p = r, r
	}
}

var (
	k8sKindYAML = regexp.MustCompile(`(?m)^[ \t]*kind:[ \t]*["']?Secret["']?[ \t]*\r?$`)
	k8sKindJSON = regexp.MustCompile(`"kind"\s*:\s*"Secret"`)
	k8sDataJSON = regexp.MustCompile(`"(?:data|stringData)"\s*:\s*\{`)
)

// scanK8sSecrets reports every value under data: / stringData: of a
// Kubernetes Secret manifest (YAML, one document of a multi-document file,
// or JSON as printed by kubectl -o json): whatever the key is called, those
// values are the secret. ConfigMaps and other kinds are left alone.
func scanK8sSecrets(text string, out []candidate) []candidate {
	if !strings.Contains(text, "Secret") {
		return out
	}
	if strings.Contains(text, "ata:") {
		for ds := 0; ds < len(text); {
			de := yamlDocEnd(text, ds)
			if k8sKindYAML.MatchString(text[ds:de]) {
				out = scanK8sYAMLDoc(text, ds, de, out)
			}
			ds = de
		}
	}
	if strings.Contains(text, `"kind"`) && k8sKindJSON.MatchString(text) {
		done := 0
		for _, m := range k8sDataJSON.FindAllStringIndex(text, -1) {
			if m[1]-1 < done {
				continue // inside an object already scanned
			}
			out, done = scanJSONObjectValues(text, m[1]-1, out)
		}
	}
	return out
}

// yamlDocEnd returns the start of the next "---" line after ds (exclusive
// end of the document starting at ds), or len(text).
func yamlDocEnd(text string, ds int) int {
	for p := ds; p < len(text); {
		e := lineEnd(text, p)
		if p > ds && strings.TrimRight(text[p:e], " \t\r") == "---" {
			return p
		}
		p = e + 1
	}
	return len(text)
}

func scanK8sYAMLDoc(text string, ds, de int, out []candidate) []candidate {
	for p := ds; p < de; {
		e := min(lineEnd(text, p), de)
		ind := indentOf(text[p:e])
		t := strings.TrimRight(text[p+ind:e], " \t\r")
		p = e + 1
		if t != "data:" && t != "stringData:" {
			continue
		}
		for p < de {
			e := min(lineEnd(text, p), de)
			ind2 := indentOf(text[p:e])
			t2 := strings.TrimRight(text[p+ind2:e], " \t\r")
			if t2 == "" {
				p = e + 1
				continue
			}
			if ind2 <= ind {
				break
			}
			next := e + 1
			if c := strings.Index(t2, ":"); c > 0 {
				vs := p + ind2 + c + 1
				ve := p + ind2 + len(t2)
				for vs < ve && (text[vs] == ' ' || text[vs] == '\t') {
					vs++
				}
				if ve-vs >= 2 && (text[vs] == '"' || text[vs] == '\'') && text[ve-1] == text[vs] {
					vs, ve = vs+1, ve-1
				}
				if isBlockIndicator(text[vs:ve]) {
					vs, ve = blockScalar(text[:de], e, ind2)
					if ve > vs {
						next = lineEnd(text, ve) + 1
					}
				}
				if ve > vs {
					out = append(out, candidate{start: vs, end: ve, prio: prioK8s, kind: KindK8sSecretData})
				}
			}
			p = next
		}
	}
	return out
}

func indentOf(line string) int {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i
}

// scanJSONObjectValues reports the string values of the flat JSON object
// whose '{' is at open (the data map of a Secret), stopping at its '}';
// it also returns where it stopped.
func scanJSONObjectValues(text string, open int, out []candidate) ([]candidate, int) {
	prev := byte('{')
	for i := open + 1; i < len(text); i++ {
		switch c := text[i]; c {
		case '}':
			return out, i
		case '"':
			e := quotedEnd(text, i+1, '"')
			if prev == ':' && e > i+1 {
				out = append(out, candidate{start: i + 1, end: e, prio: prioK8s, kind: KindK8sSecretData})
			}
			prev, i = '"', e
		case ' ', '\t', '\n', '\r':
		default:
			prev = c
		}
	}
	return out, len(text)
}

// minEntropyLen is the shortest token the adjacency rule considers.
const minEntropyLen = 32

// scanAdjacentEntropy reports a long random-looking token written right
// after a secret-like word without a separator: "--api-key 3f9a…",
// "requirepass Zx…", "token 'ab12…'". Host names, paths and words do not
// qualify: the token must be hex, or mix upper case, lower case and digits.
func scanAdjacentEntropy(text string, out []candidate) []candidate {
	for i := 0; i < len(text); {
		if !isKeyChar(text[i]) {
			i++
			continue
		}
		ws := i
		for i < len(text) && isKeyChar(text[i]) {
			i++
		}
		we := i
		j := i
		for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
			j++
		}
		if j == we || j >= len(text) {
			continue
		}
		if text[j] == '"' || text[j] == '\'' {
			j++
		}
		vs := j
		for j < len(text) && isEntropyChar(text[j]) {
			j++
		}
		if j-vs < minEntropyLen || !tokenEnds(text, j) {
			continue
		}
		tok := text[vs:j]
		if tok[0] == '/' || !(mixedCase(tok) || isHex(tok)) || entropy(tok) < 3.0 {
			continue
		}
		if classifyKey(text[ws:we]) == keyNone {
			continue
		}
		out = append(out, candidate{start: vs, end: j, prio: prioHighEntropy, kind: KindHighEntropy})
		i = j
	}
	return out
}

// tokenEnds reports whether a token ending at j stands alone: followed by
// the end of the text, a blank, a quote or closing punctuation, not by more
// name characters (a host name "….svc.cluster.local" or a file name).
func tokenEnds(text string, j int) bool {
	if j == len(text) {
		return true
	}
	c := text[j]
	if c == '.' {
		return j+1 == len(text) || text[j+1] <= ' '
	}
	return !isKeyChar(c) && c != '~' && c != '@' && c != ':'
}

func isEntropyChar(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '=' || c == '_' || c == '-'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')) {
			return false
		}
	}
	return true
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var n [256]int
	for i := 0; i < len(s); i++ {
		n[s[i]]++
	}
	h := 0.0
	for _, c := range n {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}
