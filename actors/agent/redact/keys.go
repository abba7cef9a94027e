package redact

import (
	"bytes"
	"strings"
)

// keyClass is what the name of a key says about its value.
type keyClass uint8

const (
	keyNone          keyClass = iota
	keyPassword               // password, passwd, pass, pw, passphrase, dbPassword …
	keyPwd                    // pwd: a password, or the shell's working directory
	keySecret                 // secret, token, api key, access key, private key …
	keyCredentials            // credentials: a secret, or a path to a credentials file
	keyAuth                   // auth: a credential, or the name of an auth method
	keyAuthorization          // Authorization / Proxy-Authorization headers
)

// secretHints must occur (case-insensitively) in a key before it is split
// into words; most keys in a log line fail this cheap test.
var secretHints = []string{"pass", "pw", "secret", "token", "key", "auth", "cred", "signature"}

// passwordWords are the last word of a password-like key; passwordSuffixes
// also catch compounds written as one word (dbpassword, mysqlpasswd).
var (
	passwordWords = setOf("password", "passwd", "pass", "pw", "passphrase", "passwort", "passcode",
		"requirepass", "masterauth") // Redis
	passwordSuffixes = []string{"password", "passwd", "passphrase"}
	secretWords      = setOf("secret", "token", "apikey", "signature") // X-Amz-Signature, X-Goog-Signature
	secretSuffixes   = []string{"secret", "token", "apikey", "accesskey", "secretkey", "privatekey",
		"signingkey", "masterkey", "authkey", "encryptionkey"}
)

// keyOwners are the words that make a following "key" a credential
// (api_key, AWS_SECRET_ACCESS_KEY, signingKey) rather than an index or a
// cache key (sort_key, partition_key, cache_key).
var keyOwners = setOf("api", "access", "secret", "private", "signing", "sign", "encryption", "encrypt",
	"decryption", "master", "client", "auth", "hmac", "jwt", "webhook", "account", "storage", "shared",
	"license", "subscription", "session", "service", "app", "admin", "consumer", "cipher", "aes", "sas",
	"root", "crypt")

// keyQualifiers may follow the secret word without changing what the value
// is: password_hash, token_value, secret_key_base, PASSWORD_B64.
var keyQualifiers = setOf("hash", "value", "val", "b64", "base64", "enc", "encoded", "encrypted", "plain",
	"plaintext", "raw", "str", "string", "data", "bytes", "hex", "text", "txt", "base", "literal")

// classifyKey decides from a key's name whether its value is a secret. The
// decision is made on the last word of the key (its head noun), so
// db_password and clientSecret are secrets while password_reset_count,
// token_bucket_size, max_tokens, secret_name, token_url, auth_method and
// PASSWORD_FILE are not: they describe a secret without containing it.
func classifyKey(key string) keyClass {
	if len(key) > maxKeyLen {
		key = key[len(key)-maxKeyLen:]
	}
	if !hasHint(key) {
		return keyNone
	}
	var buf [maxKeyLen]byte
	var parts [maxKeyWords][2]int
	n := splitKey(key, &buf, &parts)
	word := func(i int) []byte { return buf[parts[i][0]:parts[i][1]] }
	for n > 1 && keyQualifiers[string(word(n-1))] {
		n--
	}
	if n == 0 {
		return keyNone
	}
	last, prev := word(n-1), []byte(nil)
	if n > 1 {
		prev = word(n - 2)
	}
	switch {
	case bytes.HasSuffix(last, []byte("pwd")):
		return keyPwd
	case passwordWords[string(last)] || hasAnySuffix(last, passwordSuffixes):
		return keyPassword
	case string(last) == "authorization":
		return keyAuthorization
	case string(last) == "auth":
		return keyAuth
	case string(last) == "credential" || string(last) == "credentials" || string(last) == "creds":
		return keyCredentials
	case secretWords[string(last)] || hasAnySuffix(last, secretSuffixes):
		return keySecret
	case string(last) == "key" && keyOwners[string(prev)]:
		return keySecret
	}
	return keyNone
}

func hasHint(key string) bool {
	for _, h := range secretHints {
		if containsFold(key, h) {
			return true
		}
	}
	return false
}

// maxKeyWords is how many trailing words of a key classifyKey looks at.
const maxKeyWords = 8

// splitKey splits key into lower-case words at punctuation and camelCase
// boundaries ("X-Api-Key", "clientSecret", "APIKey", "AWS_SECRET_ACCESS_KEY")
// and strips trailing digits (password2 → password). The last maxKeyWords
// words are stored in parts as [start, end) ranges of buf; it returns how
// many. Nothing is allocated: it runs for every key=value pair of a log.
func splitKey(key string, buf *[maxKeyLen]byte, parts *[maxKeyWords][2]int) int {
	n, w := 0, 0 // parts stored, bytes of buf used
	start := -1  // start in buf of the current word
	for i := 0; i <= len(key); i++ {
		var c byte
		boundary := i == len(key)
		if !boundary {
			c = key[i]
			if !isAlnum(c) {
				boundary = true
			} else if start >= 0 && isUpper(c) {
				p := key[i-1]
				boundary = isLower(p) || isDigit(p) || (isUpper(p) && i+1 < len(key) && isLower(key[i+1]))
			}
		}
		if boundary && start >= 0 {
			e := w
			for e > start && isDigit(buf[e-1]) {
				e--
			}
			if e > start {
				if n == maxKeyWords {
					copy(parts[:], parts[1:])
					n--
				}
				parts[n] = [2]int{start, e}
				n++
			}
			start = -1
		}
		if i == len(key) || !isAlnum(c) {
			continue
		}
		if start < 0 {
			start = w
		}
		if isUpper(c) {
			c += 'a' - 'A'
		}
		buf[w] = c
		w++
	}
	return n
}

// nonSecretValues are values that say something about a secret without
// being one: booleans, nulls, states and masks others already applied.
var nonSecretValues = setOf("true", "false", "yes", "no", "on", "off", "null", "nil", "none", "undefined",
	"empty", "unset", "n/a", "na", "tbd", "todo", "enabled", "disabled", "required", "optional", "-",
	"invalid", "valid", "expired", "missing", "unknown", "error", "failed", "ok", "success", "pending",
	"revoked", "redacted", "filtered", "masked", "hidden", "removed", "omitted", "sensitive", "...", "…",
	"read", "write") // GitHub Actions permissions: id-token: write

// passwordStatusWords follow "password:" in logs and sentences without
// being the password ("password: incorrect", "password: the one in
// vault"); nonSecretValues, which acceptValue applies to every value, hold
// the rest (invalid, expired, missing, none …).
var passwordStatusWords = setOf("incorrect", "wrong", "correct", "changed", "reset", "mismatch", "denied",
	"rejected", "accepted", "weak", "strong", "set", "updated", "expiring", "locked", "unlocked", "blank",
	"same", "new", "old", "default", "the", "a", "an", "is", "was", "not", "no", "from", "in", "for", "see",
	"please", "use", "stored", "saved", "hidden", "provided", "supplied", "given",
	"unchanged", "authentication", "auth", "login", "prompt", "policy", "requirements", "length", "too",
	"must", "should", "cannot", "can't", "did", "does", "doesn't", "didn't", "will", "won't", "never")

// maskWords are accepted inside decorations: ***REDACTED***, [FILTERED].
var maskWords = setOf("redacted", "filtered", "masked", "hidden", "removed", "omitted", "sensitive", "secret")

// authWords are values of an "auth" key that name a method or a result,
// not a credential (pg_hba "auth=md5", "auth: failed").
var authWords = setOf("ok", "failed", "failure", "success", "successful", "denied", "error", "invalid",
	"expired", "missing", "required", "none", "basic", "bearer", "digest", "token", "jwt", "oauth",
	"oauth2", "oidc", "saml", "ldap", "kerberos", "gssapi", "sasl", "plain", "md5", "scram",
	"scram-sha-256", "trust", "peer", "ident", "cert", "password", "iam", "apikey", "api_key", "mtls",
	"tls", "anonymous", "true", "false", "enabled", "disabled", "local", "internal", "external")

// authSchemes precede the credential in an Authorization value.
var authSchemes = setOf("bearer", "basic", "token", "bot", "digest", "negotiate", "ntlm", "apikey",
	"api-key", "sso-key", "aws4-hmac-sha256")

// isPlaceholder reports whether v stands in for a secret instead of being
// one: empty, masked (****, <redacted>, [FILTERED]), a variable or template
// reference (${DB_PASS}, $DB_PASS, %DB_PASS%, {{ .Values.pw }}, %s), or a
// non-secret word (true, null, disabled). "changeme" and other weak
// passwords are real passwords and are not placeholders.
func isPlaceholder(v string) bool {
	if v == "" {
		return true
	}
	l := asciiLower(v)
	if nonSecretValues[l] {
		return true
	}
	if onlyRunes(v, "*•●") || (len(v) >= 4 && (onlyRunes(v, "x") || onlyRunes(v, "X") || onlyRunes(v, "#"))) {
		return true
	}
	if len(v) >= 2 {
		f, b := v[0], v[len(v)-1]
		if (f == '<' && b == '>') || (f == '[' && b == ']') || (f == '{' && b == '}') || (f == '(' && b == ')') {
			return true
		}
	}
	switch {
	case strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}"),
		strings.HasPrefix(v, "$(") && strings.HasSuffix(v, ")"),
		strings.HasPrefix(v, "#{") && strings.HasSuffix(v, "}"),
		len(v) >= 3 && v[0] == '%' && v[len(v)-1] == '%',
		len(v) >= 2 && v[0] == '$' && isEnvName(v[1:]),
		v == "%s" || v == "%v" || v == "%q" || v == "%d",
		strings.HasPrefix(v, "%(") && strings.HasSuffix(v, ")s"):
		return true
	}
	if t := strings.Trim(l, "*[]()<>_-#. "); t != l && maskWords[t] {
		return true
	}
	// kubectl describe secret prints sizes, not values: "password:  16 bytes".
	if n, ok := strings.CutSuffix(v, " bytes"); ok && allDigits(n) {
		return true
	}
	return false
}

// isEnvName reports whether s is an upper-case environment variable name.
func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isUpper(c) || c == '_' || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return s != ""
}

// isK8sRef reports whether v is a Kubernetes "namespace/name" reference,
// the way controllers log which Secret they work on (secret="payments/db").
func isK8sRef(v string) bool {
	slash := strings.IndexByte(v, '/')
	if slash <= 0 || slash == len(v)-1 || strings.Count(v, "/") != 1 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(isLower(c) || isDigit(c) || c == '-' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// isPathLike reports whether v is a file path (the value of PWD, OLDPWD or
// GOOGLE_APPLICATION_CREDENTIALS).
func isPathLike(v string) bool {
	return strings.HasPrefix(v, "/") || strings.HasPrefix(v, "~/") || strings.HasPrefix(v, "./") ||
		strings.HasPrefix(v, "../") || (len(v) > 2 && isLetter(v[0]) && v[1] == ':' && v[2] == '\\')
}

// isProse reports whether v is a plain word, as in "failed to refresh
// token: context deadline exceeded".
func isProse(v string) bool {
	v = strings.TrimRight(v, ".,!?")
	if v == "" {
		return true
	}
	for i := 0; i < len(v); i++ {
		if !isLetter(v[i]) {
			return false
		}
	}
	return true
}

// isProseToken reports whether s holds only lower-case letters and
// punctuation, as words do and random tokens almost never do.
func isProseToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) || isUpper(s[i]) {
			return false
		}
	}
	return true
}

// acceptValue applies the checks every key=value form shares: val (already
// stripped of quotes and of an auth scheme) of a key of class kc is a
// secret unless it is a placeholder or a known non-secret shape.
func acceptValue(kc keyClass, key, val string) bool {
	if isPlaceholder(val) {
		return false
	}
	switch kc {
	case keyPwd, keyCredentials:
		return !isPathLike(val)
	case keyAuth:
		return !authWords[asciiLower(val)]
	case keySecret:
		return !(strings.EqualFold(key, "secret") && isK8sRef(val))
	}
	return true
}

// schemeOffset returns where the credential starts in an Authorization
// value such as "Bearer abc" (4+…), or 0 when val has no scheme word.
func schemeOffset(val string) int {
	sp := strings.IndexAny(val, " \t")
	if sp <= 0 || !authSchemes[asciiLower(val[:sp])] {
		return 0
	}
	i := sp
	for i < len(val) && (val[i] == ' ' || val[i] == '\t') {
		i++
	}
	if i == len(val) {
		return 0
	}
	return i
}

// valueKind names the secret found as the value of a key.
func valueKind(kc keyClass, key, val string) (string, int) {
	switch kc {
	case keyPassword, keyPwd:
		return KindPassword, prioKeyValue
	case keyAuth, keyAuthorization:
		return KindAuthorization, prioAuthorization
	}
	if len(val) == 40 && containsFold(key, "secret") && (containsFold(key, "access") || containsFold(key, "aws")) && isBase64ish(val) {
		return KindAWSSecretAccessKey, prioAWSSecret
	}
	return KindSecretValue, prioKeyValue
}

func isBase64ish(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '/' || c == '+') {
			return false
		}
	}
	return true
}

func setOf(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

func hasAnySuffix(s []byte, suffixes []string) bool {
	for _, x := range suffixes {
		if bytes.HasSuffix(s, []byte(x)) {
			return true
		}
	}
	return false
}

// indexFold is strings.Index for a lower-case sub, ignoring the ASCII case
// of s, without allocating. Candidates are found with strings.IndexByte
// (vectorised) for each case of sub's first byte; each search is redone
// only once the scan has passed its last hit, so the whole is linear.
func indexFold(s, sub string) int {
	n := len(sub)
	if n == 0 {
		return 0
	}
	first := sub[0]
	up := first
	if isLower(first) {
		up = first - 'a' + 'A'
	}
	if len(s) < 64 {
		// A key name: a plain scan is cheaper than the calls.
		for i := 0; i+n <= len(s); i++ {
			if c := s[i]; (c == first || c == up) && equalFoldLower(s[i+1:i+n], sub[1:]) {
				return i
			}
		}
		return -1
	}
	lo, hi := -1, -1 // next position of first and of up at or after i; len(s) when none
	for i := 0; i+n <= len(s); {
		if lo < i {
			if k := strings.IndexByte(s[i:], first); k < 0 {
				lo = len(s)
			} else {
				lo = i + k
			}
		}
		if hi < i {
			if up == first {
				hi = lo
			} else if k := strings.IndexByte(s[i:], up); k < 0 {
				hi = len(s)
			} else {
				hi = i + k
			}
		}
		j := min(lo, hi)
		if j+n > len(s) {
			return -1
		}
		if equalFoldLower(s[j+1:j+n], sub[1:]) {
			return j
		}
		i = j + 1
	}
	return -1
}

// equalFoldLower reports whether s equals the lower-case sub ignoring the
// ASCII case of s; len(s) == len(sub).
func equalFoldLower(s, sub string) bool {
	for k := 0; k < len(sub); k++ {
		c := s[k]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		if c != sub[k] {
			return false
		}
	}
	return true
}

// containsFold is an allocation-free ASCII case-insensitive strings.Contains;
// sub must be lower case.
func containsFold(s, sub string) bool { return indexFold(s, sub) >= 0 }

func onlyRunes(s, set string) bool {
	for _, r := range s {
		if !strings.ContainsRune(set, r) {
			return false
		}
	}
	return s != ""
}

func isUpper(c byte) bool  { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool  { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return isUpper(c) || isLower(c) }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }

// isKeyChar reports whether c may appear in a key name.
func isKeyChar(c byte) bool { return keyChars[c] }

var keyChars = func() (t [256]bool) {
	for c := range 256 {
		b := byte(c)
		t[c] = isAlnum(b) || b == '_' || b == '-' || b == '.'
	}
	return t
}()
