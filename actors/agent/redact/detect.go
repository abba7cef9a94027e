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
	KindCLIPassword        = "cli_password"          // curl -u user:PASSWORD, mysql -pPASSWORD, sshpass -p, --password VALUE
	KindK8sSecretData      = "k8s_secret_data"       // values under data:/stringData: of a kind: Secret
	KindAuthorization      = "authorization"         // credentials of an Authorization header, bearer tokens
	KindPassword           = "password"              // value of a password-like key
	KindSecretValue        = "secret_value"          // value of a token/secret/api-key-like key
	KindHighEntropy        = "high_entropy"          // ≥ 32 random-looking characters right after a secret-like word
	KindVendorToken        = "vendor_token"          // other vendors' prefixed tokens: GitLab, npm, Vault, Hugging Face …
	KindPasswordHash       = "password_hash"         // crypt(3), bcrypt, apr1 and argon2 hashes (crackable offline)
	KindCookie             = "cookie"                // values in Cookie / Set-Cookie headers and curl --cookie
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
	prioCLIOption // --password VALUE: named by a more specific finding when there is one
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
	// Prefixed tokens of other services developers paste. Each prefix is the
	// vendor's documented token format; the lengths are the documented
	// ones or a safe lower bound.
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"glpat-", "gldt-", "glptt-", "glrt-", "glft-", "glsoat-", "glcbt-", "glimt-", "gloas-"},
		re:    regexp.MustCompile(`\bgl(?:pat|dt|ptt|rt|ft|soat|cbt|imt|oas)-[A-Za-z0-9_\-]{20,}`), // GitLab
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"npm_"},
		re:    regexp.MustCompile(`\bnpm_[A-Za-z0-9]{36}\b`),
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"hvs.", "hvb.", "hvr."},
		re:    regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_\-]{24,}`), // HashiCorp Vault
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"hf_"},
		re:    regexp.MustCompile(`\bhf_[A-Za-z0-9]{34,}\b`), // Hugging Face
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"SG."},
		re:    regexp.MustCompile(`\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b`), // SendGrid
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"dckr_pat_", "dckr_oat_"},
		re:    regexp.MustCompile(`\bdckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,}`), // Docker Hub
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"glsa_", "glc_"},
		re:    regexp.MustCompile(`\b(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b|glc_[A-Za-z0-9+/]{32,}={0,2})`), // Grafana
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"pypi-AgE"},
		re:    regexp.MustCompile(`\bpypi-AgE[A-Za-z0-9_\-]{50,}`),
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"dop_v1_", "doo_v1_", "dor_v1_"},
		re:    regexp.MustCompile(`\bdo[opr]_v1_[a-f0-9]{64}\b`), // DigitalOcean
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"shpat_", "shpca_", "shppa_", "shpss_"},
		re:    regexp.MustCompile(`\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b`), // Shopify
	},
	{
		kind: KindSlackToken, prio: prioVendorToken,
		hints: []string{"xapp-"},
		re:    regexp.MustCompile(`\bxapp-\d-[A-Za-z0-9\-]{10,}`),
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{":AA"},
		re:    regexp.MustCompile(`\b\d{8,10}:AA[A-Za-z0-9_\-]{32,33}\b`), // Telegram bot
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"/api/webhooks/"},
		re:    regexp.MustCompile(`discord(?:app)?\.com/api/webhooks/\d+/([A-Za-z0-9_\-]{60,})`),
		group: 1,
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"GOCSPX-", "ya29.", "1//0"},
		re:    regexp.MustCompile(`\b(?:GOCSPX-[A-Za-z0-9_\-]{28}|ya29\.[A-Za-z0-9_\-]{30,}|1//0[A-Za-z0-9_\-]{40,})`), // Google OAuth
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"AGE-SECRET-KEY-1"},
		re:    regexp.MustCompile(`\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b`),
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"dapi"},
		re:    regexp.MustCompile(`\bdapi[a-f0-9]{32}(?:-\d+)?\b`), // Databricks
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"ATATT3"},
		re:    regexp.MustCompile(`\bATATT3[A-Za-z0-9_\-=]{100,}`), // Atlassian
	},
	{
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"NRAK-", "PMAK-", "lin_api_", "sntrys_", "sntryu_", "sq0atp-", "sq0csp-", ".atlasv1."},
		re: regexp.MustCompile(`\b(?:NRAK-[A-Z0-9]{27}\b|PMAK-[a-f0-9]{24}-[a-f0-9]{34}\b|lin_api_[A-Za-z0-9]{40}\b|` +
			`sntry[su]_[A-Za-z0-9+/=_\-]{40,}|sq0(?:atp|csp)-[A-Za-z0-9_\-]{22,}|[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,})`),
	},
	{
		// Azure AD application (client) secrets: three characters, a digit,
		// "Q~", then 31–34 more.
		kind: KindVendorToken, prio: prioVendorToken,
		hints: []string{"Q~"},
		re:    regexp.MustCompile(`(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)`),
		group: 1,
	},
	{
		// The signature of an Azure shared access signature URL
		// (…?sv=2021-06-08&se=…&sig=…).
		kind: KindSecretValue, prio: prioKeyValue,
		hints: []string{"sig="},
		re:    regexp.MustCompile(`[?&]sig=([^&\s"'#]+)`),
		group: 1,
	},
	{
		// A URL whose user is a hex key and that has no password: the
		// Sentry DSN (https://<32 hex>@o1.ingest.sentry.io/2), a 40-hex
		// personal access token in a clone URL, and their kin.
		kind: KindSecretValue, prio: prioURLPassword,
		hints: []string{"://"},
		all:   []string{"@"},
		re:    regexp.MustCompile(`\b[A-Za-z][A-Za-z0-9+.\-]{1,30}://([0-9a-fA-F]{32,64})@`),
		group: 1,
	},
	{
		// Password hashes, in the exact shapes crypt(3), Apache and argon2
		// write them (shadow files, htpasswd, users tables): a hash is the
		// password to anyone with a GPU.
		kind: KindPasswordHash, prio: prioVendorToken,
		hints: []string{"$1$", "$5$", "$6$", "$2a$", "$2b$", "$2x$", "$2y$", "$apr1$", "$y$", "$argon2"},
		re: regexp.MustCompile(`\$(?:(?:1|apr1)\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}|[56]\$(?:rounds=\d+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43,86}|` +
			`2[abxy]\$\d\d\$[./A-Za-z0-9]{53}|y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{1,86}\$[./A-Za-z0-9]{43}|argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+)`),
	},
	// Passwords given to a command on its command line. One rule per
	// command: a pattern that starts with a literal is found with a string
	// search, where one alternation of them all made the regexp engine try
	// every line that holds "login".
	cliRule("sshpass", `sshpass\b[^\n|;&]*?[ \t]-p[ \t]*`),
	cliRule("login", `login\b[^\n|;&]*?[ \t]-p[ \t]+`), // docker/podman/helm/buildah/skopeo login -p
	cliRule("redis-cli", `redis-cli\b[^\n|;&]*?[ \t]-a[ \t]+`),
	cliRule("ldap", `ldap[a-z]*\b[^\n|;&]*?[ \t]-w[ \t]+`), // ldapsearch, ldapmodify … -w
	cliRule("sqlcmd", `sqlcmd\b[^\n|;&]*?[ \t]-P[ \t]*`),
	cliRule("bcp ", `bcp [^\n|;&]*?[ \t]-P[ \t]*`),
	cliRule("ipmitool", `ipmitool\b[^\n|;&]*?[ \t]-P[ \t]*`),
	cliRule("-pass", `-pass(?:in|out)[ \t]+pass:`), // openssl
	cliRule("smbclient", `smbclient\b[^\n|;&]*?[ \t]-U[ \t]*["']?[^\s%"']+%`),
	{
		// --password VALUE, --db-password VALUE, --api-key VALUE: a long
		// option named for a secret followed by its value after a blank
		// (the "=" form is a key=value pair).
		kind: KindCLIPassword, prio: prioCLIOption,
		hints: []string{"--"},
		re:    regexp.MustCompile(`--([A-Za-z0-9][A-Za-z0-9_\-]*)[ \t]+["']?([^\s"'\-][^\s"']*)`),
		group: 2,
		valid: func(text string, m []int) bool {
			if m[0] > 0 && text[m[0]-1] != ' ' && text[m[0]-1] != '\t' {
				return false // "---password x", "a--token b": not an option
			}
			v := text[m[4]:m[5]]
			switch classifyKey(text[m[2]:m[3]]) {
			case keyPassword, keySecret:
				// "--token T)" in prose is a metavariable, not a token.
				return len(strings.TrimRight(v, ")].,;")) >= 4 && !isPlaceholder(v) && !isPathLike(v)
			}
			return false
		},
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

// cliRule is a rule for the password a command takes after the flag that
// prefix ends with: the next word, quoted or not.
func cliRule(hint, prefix string) patternRule {
	return patternRule{
		kind: KindCLIPassword, prio: prioURLPassword,
		hints: []string{hint},
		re:    regexp.MustCompile(prefix + `["']?([^\s"']+)`),
		group: 1,
		valid: func(text string, m []int) bool { v := text[m[2]:m[3]]; return v[0] != '-' && !isPlaceholder(v) },
	}
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
	c = scanXMLValues(text, c)
	c = scanCookies(text, c)
	c = scanProsePasswords(text, c)
	c = scanPgpass(text, c)
	c = scanDirectives(text, c)
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

// hintPairKey is the first two bytes of a hint, the key hintLines looks up
// at every byte of a text.
func hintPairKey(a, b byte) uint16 { return uint16(a)<<8 | uint16(b) }

// hintPairs is a bit set of the two-byte prefixes of all hints (both cases
// of a case-insensitive hint), and hintsByPair the hints and rules each
// prefix starts. Every byte of a text costs one bit test; the few that
// start a hint's prefix cost a map lookup and a comparison.
var hintPairs, hintsByPair = func() (bits [1 << 16 / 64]uint64, by map[uint16][]hintRef) {
	by = map[uint16][]hintRef{}
	for ri, r := range patternRules {
		for _, h := range r.hints {
			if len(h) < 2 {
				panic("redact: a hint must be at least two bytes: " + h)
			}
			for _, a := range caseVariants(h[0], r.fold) {
				for _, b := range caseVariants(h[1], r.fold) {
					k := hintPairKey(a, b)
					bits[k>>6] |= 1 << (k & 63)
					by[k] = append(by[k], hintRef{hint: h, rule: ri})
				}
			}
		}
	}
	return bits, by
}()

// caseVariants returns c, and with fold its upper-case form too.
func caseVariants(c byte, fold bool) []byte {
	if fold && isLower(c) {
		return []byte{c, c - 'a' + 'A'}
	}
	return []byte{c}
}

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
	for i := 0; i+1 < len(text); i++ {
		c := text[i]
		if c == '\n' {
			ls = i + 1
			continue
		}
		k := hintPairKey(c, text[i+1])
		if hintPairs[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		for _, h := range hintsByPair[k] {
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
