package redact

import (
	"regexp"
	"sort"
	"strings"
)

// Span is one secret found in a text. [Start, End) are byte offsets of the
// secret itself only (the password of a URL, the value of a key=value pair),
// never of the context around it, so redacted text keeps its diagnostic
// shape.
type Span struct {
	Start, End int
	Kind       string
}

// Kinds of secrets Detect reports.
const (
	KindPrivateKey         = "private_key"           // a whole PEM "... PRIVATE KEY" block
	KindAWSAccessKeyID     = "aws_access_key_id"     // AKIA…, ASIA…: 20 characters
	KindAWSSecretAccessKey = "aws_secret_access_key" // 40 characters after an AWS secret key name
	KindGitHubToken        = "github_token"          // ghp_, gho_, ghu_, ghs_, ghr_, github_pat_
	KindAnthropicKey       = "anthropic_key"         // sk-ant-…
	KindOpenAIKey          = "openai_key"            // sk-…, sk-proj-…
	KindSlackToken         = "slack_token"           // xoxb-… and incoming-webhook paths
	KindStripeKey          = "stripe_key"            // sk_live_, rk_live_, *_test_, whsec_
	KindGoogleAPIKey       = "google_api_key"        // AIza + 35
	KindJWT                = "jwt"                   // eyJ….….…
	KindURLPassword        = "url_password"          // scheme://user:PASSWORD@host, user:PASSWORD@tcp(host)
	KindCLIPassword        = "cli_password"          // curl -u user:PASSWORD, mysql -pPASSWORD
	KindK8sSecretData      = "k8s_secret_data"       // values under data:/stringData: of a kind: Secret
	KindAuthorization      = "authorization"         // credentials of an Authorization header, bearer tokens
	KindPassword           = "password"              // value of a password-like key
	KindSecretValue        = "secret_value"          // value of a token/secret/api-key-like key
	KindHighEntropy        = "high_entropy"          // ≥ 32 random-looking characters right after a secret-like word
	KindEmail              = "email"                 // only with Options.Emails
)

// Priorities decide the Kind of overlapping findings that are merged into
// one span: the most specific finding names it.
const (
	prioPrivateKey = iota
	prioAnthropic  // sk-ant- keys also match the OpenAI pattern
	prioVendorToken
	prioJWT
	prioAWSSecret
	prioURLPassword
	prioK8s
	prioAuthorization
	prioKeyValue
	prioHighEntropy
)

// candidate is one finding before overlapping findings are merged.
type candidate struct {
	start, end int
	prio       int
	kind       string
}

// patternRule is a detector written as a regular expression. Go's regexp is
// RE2 (linear in the input), so no pattern can blow up on hostile text.
type patternRule struct {
	kind  string
	prio  int
	hints []string // substrings; the rule runs only on lines holding one
	fold  bool     // hints are lower case and match case-insensitively
	all   []string // substrings such a line must also hold
	re    *regexp.Regexp
	group int                             // submatch that holds the secret; 0 = whole match
	valid func(text string, m []int) bool // optional check of a match
}

// The patterns below are written for this package. Each one is anchored on
// a vendor prefix or on explicit credential syntax, so free text, hostnames
// and hashes do not match. None can match a newline, so running one on
// just the lines that hold its hint finds exactly what running it on the
// whole text would, at a fraction of the cost.
var patternRules = []patternRule{
	{
		kind: KindAWSAccessKeyID, prio: prioVendorToken,
		hints: []string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"},
		re:    regexp.MustCompile(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b`),
	},
	{
		kind: KindGitHubToken, prio: prioVendorToken,
		hints: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"},
		re:    regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b`),
	},
	{
		kind: KindAnthropicKey, prio: prioAnthropic,
		hints: []string{"sk-ant-"},
		re:    regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_\-]{20,}`),
	},
	{
		kind: KindOpenAIKey, prio: prioVendorToken,
		hints: []string{"sk-"},
		re:    regexp.MustCompile(`\bsk-(?:proj-|svcacct-|admin-)?([A-Za-z0-9_\-]{20,})`),
		// Real keys mix upper case, lower case and digits; requiring all
		// three keeps "sk-prod-cluster-node-0001" (a host name) out.
		valid: func(text string, m []int) bool { return mixedCase(text[m[2]:m[3]]) },
	},
	{
		kind: KindSlackToken, prio: prioVendorToken,
		hints: []string{"xox"},
		re:    regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9\-]{10,}`),
	},
	{
		kind: KindSlackToken, prio: prioVendorToken,
		hints: []string{"hooks.slack.com/"},
		re:    regexp.MustCompile(`hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/\-]{20,})`),
		group: 1,
	},
	{
		kind: KindStripeKey, prio: prioVendorToken,
		hints: []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"},
		re:    regexp.MustCompile(`\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})`),
	},
	{
		kind: KindGoogleAPIKey, prio: prioVendorToken,
		hints: []string{"AIza"},
		re:    regexp.MustCompile(`\b(AIza[A-Za-z0-9_\-]{35})(?:[^A-Za-z0-9_\-]|$)`),
		group: 1,
	},
	{
		kind: KindJWT, prio: prioJWT,
		hints: []string{"eyJ"},
		re:    regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*`),
	},
	{
		// scheme://user:PASSWORD@host — the greedy password stops at the
		// last '@' before a slash or a space, so "p@ss" in a raw URL stays
		// whole; scheme, user, host, port and database remain visible. The
		// user may be an e-mail address (smtp://me@example.com:pw@relay).
		kind: KindURLPassword, prio: prioURLPassword,
		hints: []string{"://"},
		all:   []string{"@"},
		re:    regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.\-]{1,30}://[^\s:/?#"'\\]*:([^\s/"'\\]+)@`),
		group: 1,
		valid: func(text string, m []int) bool { return !isPlaceholder(text[m[2]:m[3]]) },
	},
	{
		// Go MySQL DSN: user:PASSWORD@tcp(host:3306)/db.
		kind: KindURLPassword, prio: prioURLPassword,
		hints: []string{"@tcp(", "@unix(", "@udp("},
		re:    regexp.MustCompile(`\b[A-Za-z0-9_.\-]+:([^\s@/:"'\\]+)@(?:tcp|unix|udp)\(`),
		group: 1,
		valid: func(text string, m []int) bool { return !isPlaceholder(text[m[2]:m[3]]) },
	},
	{
		kind: KindCLIPassword, prio: prioURLPassword,
		hints: []string{"-u ", "-u\t", "--user"},
		re:    regexp.MustCompile(`(?:^|\s)(?:-u|--user)[ \t]+["']?([^\s:"']+):([^\s"']+)`),
		group: 2,
		valid: func(text string, m []int) bool {
			// docker run -u 1000:1000 is a uid:gid, not a credential.
			return !(allDigits(text[m[2]:m[3]]) && allDigits(text[m[4]:m[5]])) && !isPlaceholder(text[m[4]:m[5]])
		},
	},
	{
		kind: KindCLIPassword, prio: prioURLPassword,
		hints: []string{"mysql", "mariadb"},
		re:    regexp.MustCompile(`\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\n|;&]*?[ \t]-p([^\s"'][^\s]*)`),
		group: 1,
		valid: func(text string, m []int) bool { return !isPlaceholder(text[m[2]:m[3]]) },
	},
	{
		kind: KindAuthorization, prio: prioAuthorization,
		hints: []string{"bearer"}, fold: true,
		re:    regexp.MustCompile(`(?i)\bbearer[ \t]+([A-Za-z0-9._~+/\-]{16,}=*)`),
		group: 1,
		// Tokens are random: a digit or mixed case, unlike "bearer
		// tokens-are-rotated-hourly".
		valid: func(text string, m []int) bool { return !isProseToken(text[m[2]:m[3]]) },
	},
}

var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b`)

// Detect returns the secrets in text, sorted and non-overlapping. It never
// reports IP or MAC addresses, host names, ports, UUIDs, hashes, timestamps,
// paths or log levels, and (unlike a Pseudonymizer with Options.Emails) never
// e-mail addresses. It is safe for concurrent use and linear in len(text).
func Detect(text string) []Span {
	return detect(text, false)
}

func detect(text string, emails bool) []Span {
	if text == "" {
		return nil
	}
	var c []candidate
	for i, starts := range hintLines(text) {
		c = patternRules[i].find(text, starts, c)
	}
	c = scanPrivateKeys(text, c)
	c = scanKeyValues(text, c)
	c = scanK8sSecrets(text, c)
	c = scanAdjacentEntropy(text, c)
	spans := merge(c)
	if emails && strings.IndexByte(text, '@') >= 0 {
		spans = addEmails(text, spans)
	}
	return spans
}

func (r *patternRule) find(text string, lineStarts []int, out []candidate) []candidate {
	for _, ls := range lineStarts {
		le := lineEnd(text, ls)
		line := text[ls:le]
		if !containsAll(line, r.all) {
			continue
		}
		for _, m := range r.re.FindAllStringSubmatchIndex(line, -1) {
			if r.valid != nil && !r.valid(line, m) {
				continue
			}
			s, e := m[2*r.group], m[2*r.group+1]
			if s < 0 || s >= e {
				continue
			}
			out = append(out, candidate{start: ls + s, end: ls + e, prio: r.prio, kind: r.kind})
		}
	}
	return out
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

type hintRef struct {
	hint string
	rule int
}

// hintIndex maps the first byte of every hint to the hints and rules it
// starts, so one pass over the text finds the lines every rule must look
// at.
var hintIndex = func() (t [256][]hintRef) {
	for ri, r := range patternRules {
		for _, h := range r.hints {
			t[h[0]] = append(t[h[0]], hintRef{hint: h, rule: ri})
			if r.fold && isLower(h[0]) {
				u := h[0] - 'a' + 'A'
				t[u] = append(t[u], hintRef{hint: h, rule: ri})
			}
		}
	}
	return t
}()

// maxStackRules bounds the rules hintLines tracks without allocating.
const maxStackRules = 64

// hintLines returns, per pattern rule, the starts of the lines of text that
// hold one of the rule's hints: ascending, without repeats.
//
// A text without any hint (most of them) allocates nothing: the result is
// made at the first hit, and the per-rule bookkeeping lives on the stack
// while there are at most maxStackRules rules.
func hintLines(text string) [][]int {
	var lines [][]int
	var lastBuf [maxStackRules]int
	var last []int
	if len(patternRules) <= maxStackRules {
		last = lastBuf[:len(patternRules)]
	} else {
		last = make([]int, len(patternRules))
	}
	for i := range last {
		last[i] = -1
	}
	ls := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			ls = i + 1
			continue
		}
		for _, h := range hintIndex[c] {
			if last[h.rule] == ls || len(text)-i < len(h.hint) {
				continue
			}
			if w := text[i : i+len(h.hint)]; w == h.hint || (patternRules[h.rule].fold && strings.EqualFold(w, h.hint)) {
				if lines == nil {
					lines = make([][]int, len(patternRules))
				}
				lines[h.rule] = append(lines[h.rule], ls)
				last[h.rule] = ls
			}
		}
	}
	return lines
}

// merge turns overlapping findings into their union: when two detectors
// disagree about where a secret ends, the larger extent is redacted (a
// leaked tail is worse than a hidden byte of context). The most specific
// finding names the merged span.
func merge(c []candidate) []Span {
	if len(c) == 0 {
		return nil
	}
	sort.Slice(c, func(i, j int) bool {
		if c[i].start != c[j].start {
			return c[i].start < c[j].start
		}
		return c[i].end > c[j].end
	})
	out := make([]Span, 0, len(c))
	cur := c[0]
	for _, n := range c[1:] {
		if n.start < cur.end {
			cur.end = max(cur.end, n.end)
			if n.prio < cur.prio {
				cur.prio, cur.kind = n.prio, n.kind
			}
			continue
		}
		out = append(out, Span{Start: cur.start, End: cur.end, Kind: cur.kind})
		cur = n
	}
	return append(out, Span{Start: cur.start, End: cur.end, Kind: cur.kind})
}

// addEmails adds e-mail addresses that do not touch a secret; an address
// inside a URL's user-info is left to the URL rule so the host survives.
func addEmails(text string, spans []Span) []Span {
	var found [][]int
	for i := 0; i < len(text); {
		k := strings.IndexByte(text[i:], '@')
		if k < 0 {
			break
		}
		ls := strings.LastIndexByte(text[:i+k], '\n') + 1
		le := lineEnd(text, i+k)
		for _, m := range emailRE.FindAllStringIndex(text[ls:le], -1) {
			found = append(found, []int{ls + m[0], ls + m[1]})
		}
		i = le
	}
	var add []Span
	k := 0
	for _, m := range found {
		if strings.HasPrefix(text[m[0]:m[1]], "git@") { // ssh remotes: git@github.com:org/repo
			continue
		}
		for k < len(spans) && spans[k].End <= m[0] {
			k++
		}
		if k < len(spans) && spans[k].Start < m[1] {
			continue
		}
		add = append(add, Span{Start: m[0], End: m[1], Kind: KindEmail})
	}
	if len(add) == 0 {
		return spans
	}
	spans = append(spans, add...)
	sort.Slice(spans, func(i, j int) bool { return spans[i].Start < spans[j].Start })
	return spans
}

// asciiLower lower-cases ASCII letters only, so offsets stay those of text.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// mixedCase reports whether s has an upper-case letter, a lower-case letter
// and a digit.
func mixedCase(s string) bool {
	var up, low, dig bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z':
			up = true
		case 'a' <= c && c <= 'z':
			low = true
		case '0' <= c && c <= '9':
			dig = true
		}
	}
	return up && low && dig
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
