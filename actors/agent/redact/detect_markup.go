package redact

import "strings"

// maxTagLen bounds how far scanXMLValues reads one start tag; a longer one
// is not markup a person wrote by hand.
const maxTagLen = 2048

// maxElementText bounds the text of an element taken as a secret.
const maxElementText = 1024

// nameAttrs are the attributes that name a setting whose value is in a
// "value" attribute or in the element's text:
//
//	<add key="DbPassword" value="x"/>  <property name="db.password">x</property>
//	<entry key="api.token">x</entry>   <param name="secret" value="x"/>
var nameAttrs = setOf("name", "key", "id", "property", "param", "variable", "var")

// scanXMLValues finds secrets in XML configuration (Maven settings.xml,
// Hibernate, web.config, Tomcat, log4j): the text of an element named for
// a secret (<password>x</password>, <ns:clientSecret>x</ns:clientSecret>),
// and the value of a setting whose name attribute names one. Attributes
// named for a secret (password="x") are key=value pairs and found by
// scanKeyValues. Each '<' is looked at once and a tag is read at most
// maxTagLen bytes forward, so the scan is linear.
func scanXMLValues(text string, out []candidate) []candidate {
	if !strings.Contains(text, "</") && !strings.Contains(text, "/>") {
		return out
	}
	var sc xmlScan
	for i := 0; i < len(text); i++ {
		k := strings.IndexByte(text[i:], '<')
		if k < 0 {
			break
		}
		i += k
		if i+1 >= len(text) || !isLetter(text[i+1]) {
			continue
		}
		out, i = sc.tag(text, i, out)
	}
	return out
}

// xmlScan remembers, per quote character, up to where the text is known to
// hold none: "<a b='<a b='<a b='…" would otherwise have every tag search
// the same bytes for a closing quote.
type xmlScan struct {
	noQuote [2]int // up to where text holds no '"' ([0]) and no '\'' ([1])
}

// indexQuote returns the index of q in text[from:limit], or -1.
func (sc *xmlScan) indexQuote(text string, from, limit int, q byte) int {
	qi := 0
	if q == '\'' {
		qi = 1
	}
	start := max(from, sc.noQuote[qi])
	if start >= limit {
		return -1
	}
	if k := strings.IndexByte(text[start:limit], q); k >= 0 {
		return start + k
	}
	sc.noQuote[qi] = limit
	return -1
}

// tag reads the start tag at text[lt] ('<') and reports the secret it or
// its element holds. It returns where scanning goes on (the tag's '>' or
// the first byte that ended the attempt).
func (sc *xmlScan) tag(text string, lt int, out []candidate) ([]candidate, int) {
	j := lt + 1
	for j < len(text) && (isKeyChar(text[j]) || text[j] == ':') {
		j++
	}
	name := text[lt+1 : j]
	if c := strings.LastIndexByte(name, ':'); c >= 0 {
		name = name[c+1:]
	}
	limit := min(len(text), lt+maxTagLen)
	var (
		flag             keyClass // from a name attribute
		flagName         string
		valStart, valEnd = -1, -1 // the value attribute
	)
	for j < limit && text[j] != '>' {
		c := text[j]
		switch {
		case c == '<':
			return out, j - 1
		case isKeyChar(c) || c == ':':
			attr, vs, ve, next := sc.attribute(text, j, limit)
			if next < 0 { // a quote that never closes
				return out, vs - 1
			}
			j = next
			switch {
			case vs < 0:
			case attr == "value":
				valStart, valEnd = vs, ve
			case nameAttrs[attr]:
				if kc := classifyKey(text[vs:ve]); kc != keyNone {
					flag, flagName = kc, text[vs:ve]
				}
			}
		default:
			j++
		}
	}
	if j >= limit {
		return out, j
	}
	selfClosing := text[j-1] == '/'
	gt := j
	switch {
	case flag != keyNone && valStart >= 0:
		return emitXMLValue(text, valStart, valEnd, flag, flagName, out), gt
	case selfClosing:
		return out, gt
	}
	kc, key := flag, flagName
	if kc == keyNone {
		kc, key = classifyKey(name), name
	}
	if kc == keyNone {
		return out, gt
	}
	// The element's text, up to its closing tag: <password>x</password>,
	// <password><![CDATA[x]]></password>. An element holding other
	// elements is not a value; its children are scanned in turn.
	ts := gt + 1
	end := min(len(text), ts+maxElementText+16)
	if strings.HasPrefix(text[ts:], "<![CDATA[") {
		cs := ts + len("<![CDATA[")
		ce := strings.Index(text[cs:end], "]]>")
		if ce < 0 {
			return out, gt
		}
		return emitXMLValue(text, cs, cs+ce, kc, key, out), gt
	}
	te := strings.IndexByte(text[ts:end], '<')
	if te < 0 || ts+te+1 >= len(text) || text[ts+te+1] != '/' {
		return out, gt
	}
	vs, ve := ts, ts+te
	for vs < ve && isSpaceByte(text[vs]) {
		vs++
	}
	for ve > vs && isSpaceByte(text[ve-1]) {
		ve--
	}
	return emitXMLValue(text, vs, ve, kc, key, out), gt
}

// attribute reads the attribute whose name starts at j: its lower-case
// name, the extent of its quoted value (-1, -1 when it has none) and where
// the tag goes on. A value whose quote does not close before limit gives
// next = -1 and vs = just after the opening quote.
func (sc *xmlScan) attribute(text string, j, limit int) (name string, vs, ve, next int) {
	ns := j
	for j < limit && (isKeyChar(text[j]) || text[j] == ':') {
		j++
	}
	name = asciiLower(text[ns:j])
	for j < limit && isSpaceByte(text[j]) {
		j++
	}
	if j >= limit || text[j] != '=' {
		return name, -1, -1, j
	}
	j++
	for j < limit && (text[j] == ' ' || text[j] == '\t') {
		j++
	}
	if j >= limit || (text[j] != '"' && text[j] != '\'') {
		return name, -1, -1, j
	}
	vs = j + 1
	if ve = sc.indexQuote(text, vs, limit, text[j]); ve < 0 {
		return name, vs, -1, -1
	}
	return name, vs, ve, ve + 1
}

func emitXMLValue(text string, vs, ve int, kc keyClass, key string, out []candidate) []candidate {
	if ve <= vs || ve-vs > maxElementText {
		return out
	}
	val := text[vs:ve]
	if !acceptValue(kc, key, val) || (kc == keyAuth && isProse(val)) {
		return out
	}
	kind, prio := valueKind(kc, key, val)
	return append(out, candidate{start: vs, end: ve, prio: prio, kind: kind})
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// cookieAttrs are the attributes of a Set-Cookie header, which are not
// cookies.
var cookieAttrs = setOf("path", "domain", "expires", "max-age", "samesite", "secure", "httponly", "priority",
	"partitioned", "version", "comment")

// minCookieValue is the shortest cookie value taken as a secret: session
// ids and auth cookies are long; "lang=en" and "theme=dark" stay readable.
const minCookieValue = 8

// scanCookies finds cookie values: session cookies are bearer credentials.
// It reads the value of a Cookie or Set-Cookie header (also in JSON and in
// curl -H), and curl's --cookie / -b "name=value" argument. Names stay, so
// the model still sees which cookies were sent; of a Set-Cookie header only
// the cookie itself counts, not its attributes.
func scanCookies(text string, out []candidate) []candidate {
	for from := 0; from < len(text); {
		k := indexFold(text[from:], "cookie")
		if k < 0 {
			break
		}
		p := from + k
		from = p + len("cookie")
		set := p >= 4 && strings.EqualFold(text[p-4:p], "set-")
		start := p
		if set {
			start = p - 4
		}
		if start > 0 && (isAlnum(text[start-1]) || text[start-1] == '_') {
			continue
		}
		j := from
		var q byte
		switch {
		case start >= 2 && text[start-2:start] == "--" && !set: // curl --cookie 'a=b'
			for j < len(text) && (text[j] == ' ' || text[j] == '\t' || text[j] == '=') {
				j++
			}
		default: // Cookie: a=b, "cookie": "a=b"
			if j < len(text) && (text[j] == '"' || text[j] == '\'') {
				j++
			}
			for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
			if j >= len(text) || (text[j] != ':' && text[j] != '=') {
				continue
			}
			j++
			for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
		}
		if j < len(text) && (text[j] == '"' || text[j] == '\'') {
			q = text[j]
			j++
		}
		var end int
		out, end = scanCookiePairs(text, j, q, set, out)
		from = max(from, end)
	}
	// curl -b 'name=value; …' (a -b without '=' names a cookie file).
	for from := 0; from < len(text); {
		k := strings.Index(text[from:], "-b ")
		if k < 0 {
			break
		}
		p := from + k
		from = p + 3
		if p > 0 && text[p-1] != ' ' && text[p-1] != '\t' {
			continue
		}
		j := from
		for j < len(text) && text[j] == ' ' {
			j++
		}
		var q byte
		if j < len(text) && (text[j] == '"' || text[j] == '\'') {
			q = text[j]
			j++
		}
		e := j
		for e < len(text) && isKeyChar(text[e]) {
			e++
		}
		if e == j || e >= len(text) || text[e] != '=' {
			continue
		}
		var end int
		out, end = scanCookiePairs(text, j, q, false, out)
		from = max(from, end)
	}
	return out
}

// scanCookiePairs reports the values of the "name=value" pairs starting at
// i, separated by ';', up to the end of the line or the closing quote q
// (0: none). With first, only the first pair counts (Set-Cookie). It
// returns where the pairs end.
func scanCookiePairs(text string, i int, q byte, first bool, out []candidate) ([]candidate, int) {
	end := lineEnd(text, i)
	if q != 0 {
		if k := strings.IndexByte(text[i:end], q); k >= 0 {
			end = i + k
		}
	}
	for n := 0; i < end; n++ {
		se := strings.IndexByte(text[i:end], ';')
		if se < 0 {
			se = end
		} else {
			se += i
		}
		seg := text[i:se]
		if eq := strings.IndexByte(seg, '='); eq > 0 && (!first || n == 0) {
			name := asciiLower(strings.TrimSpace(seg[:eq]))
			vs, ve := i+eq+1, se
			for vs < ve && text[vs] == ' ' {
				vs++
			}
			for ve > vs && (text[ve-1] == ' ' || text[ve-1] == '\t' || text[ve-1] == '\r') {
				ve--
			}
			if ve > vs && (text[vs] == '"') && text[ve-1] == '"' && ve-vs >= 2 {
				vs, ve = vs+1, ve-1
			}
			if name != "" && !cookieAttrs[name] && ve-vs >= minCookieValue && !isPlaceholder(text[vs:ve]) {
				out = append(out, candidate{start: vs, end: ve, prio: prioKeyValue, kind: KindCookie})
			}
		}
		if first && n == 0 {
			break
		}
		i = se + 1
	}
	return out, end
}
