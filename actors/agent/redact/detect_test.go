package redact

import (
	"strings"
	"testing"
)

func spanTexts(in string, spans []Span) []found {
	var out []found
	for _, s := range spans {
		out = append(out, found{s.Kind, in[s.Start:s.End]})
	}
	return out
}

func TestDetectPositives(t *testing.T) {
	for _, tc := range positives {
		t.Run(tc.name, func(t *testing.T) {
			got := spanTexts(tc.in, Detect(tc.in))
			if !equalFound(got, tc.want) {
				t.Errorf("Detect(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDetectNegatives(t *testing.T) {
	for _, tc := range negatives {
		t.Run(tc.name, func(t *testing.T) {
			if got := spanTexts(tc.in, Detect(tc.in)); len(got) > 0 {
				t.Errorf("Detect(%q) = %q, want nothing", tc.in, got)
			}
		})
	}
}

func equalFound(a, b []found) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDetectKeepsURLParts pins the promise that only the password of a
// connection string goes: scheme, user, host, port, database and options
// are what a person debugging the connection needs.
func TestDetectKeepsURLParts(t *testing.T) {
	in := "postgres://app:S3cr3t!@db.internal:5432/orders?sslmode=require"
	p := NewPseudonymizer([]byte("0123456789abcdef-case-1"), Options{})
	out, err := p.Redact(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "postgres://app:<secret-") || !strings.HasSuffix(out, ">@db.internal:5432/orders?sslmode=require") {
		t.Errorf("Redact(%q) = %q", in, out)
	}
}

func TestDetectEmails(t *testing.T) {
	in := "alert sent to oncall@example.com; git@github.com:org/repo.git; smtp://relay:Pa55word@mail.example.com:587"
	if got := Detect(in); len(got) != 1 || got[0].Kind != KindURLPassword {
		t.Errorf("Detect without emails = %q", spanTexts(in, got))
	}
	got := spanTexts(in, detect(in, true))
	want := []found{{KindEmail, "oncall@example.com"}, {KindURLPassword, "Pa55word"}}
	if !equalFound(got, want) {
		t.Errorf("detect with emails = %q, want %q", got, want)
	}
}

func TestClassifyKey(t *testing.T) {
	tests := []struct {
		key  string
		want keyClass
	}{
		{"password", keyPassword},
		{"DB_PASSWORD", keyPassword},
		{"dbPassword", keyPassword},
		{"mysqlpassword", keyPassword},
		{"PGPASSWORD", keyPassword},
		{"--password", keyPassword},
		{"password2", keyPassword},
		{"password_hash", keyPassword},
		{"pass", keyPassword},
		{"Pwd", keyPwd},
		{"OLDPWD", keyPwd},
		{"client_secret", keySecret},
		{"clientSecret", keySecret},
		{"AWS_SECRET_ACCESS_KEY", keySecret},
		{"SecretAccessKey", keySecret},
		{"x-api-key", keySecret},
		{"APIKey", keySecret},
		{"apikey", keySecret},
		{"X-Auth-Token", keySecret},
		{"oauth2Token", keySecret},
		{"refresh_token", keySecret},
		{"SECRET_KEY_BASE", keySecret},
		{"signingKey", keySecret},
		{"Authorization", keyAuthorization},
		{"Proxy-Authorization", keyAuthorization},
		{"auth", keyAuth},
		{"basic_auth", keyAuth},
		{"credentials", keyCredentials},
		// Keys that describe a secret without holding it.
		{"password_reset_count", keyNone},
		{"PASSWORD_FILE", keyNone},
		{"token_bucket_size", keyNone},
		{"max_tokens", keyNone},
		{"tokens", keyNone},
		{"tokenizer", keyNone},
		{"secret_name", keyNone},
		{"secretName", keyNone},
		{"tokenUrl", keyNone},
		{"token_type", keyNone},
		{"auth_method", keyNone},
		{"authenticated", keyNone},
		{"author", keyNone},
		{"AWS_ACCESS_KEY_ID", keyNone}, // the id itself is caught by its own pattern
		{"sort_key", keyNone},
		{"key", keyNone},
		{"bypass", keyNone},
		{"passed", keyNone},
		{"keyspace_hits", keyNone},
	}
	for _, tc := range tests {
		if got := classifyKey(tc.key); got != tc.want {
			t.Errorf("classifyKey(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func TestIsPlaceholder(t *testing.T) {
	for _, v := range []string{"", "****", "•••", "<redacted>", "[FILTERED]", "***REDACTED***", "${DB_PASS}",
		"$DB_PASS", "%DB_PASS%", "{{ .Values.password }}", "%s", "%(password)s", "$(cat /run/secret)",
		"null", "None", "true", "xxxx", "XXXXXXXX", "16 bytes", "-"} {
		if !isPlaceholder(v) {
			t.Errorf("isPlaceholder(%q) = false, want true", v)
		}
	}
	for _, v := range []string{"x", "xx", "changeme", "hunter2", "$ecret", "$2b$12$abc", "password", "secret", "S3cr3t!", "12345"} {
		if isPlaceholder(v) {
			t.Errorf("isPlaceholder(%q) = true, want false (a real password)", v)
		}
	}
}

// TestDetectInvariants checks the Span contract on the whole corpus.
func TestDetectInvariants(t *testing.T) {
	var all []string
	for _, tc := range positives {
		all = append(all, tc.in)
	}
	for _, tc := range negatives {
		all = append(all, tc.in)
	}
	all = append(all, strings.Join(all, "\n"))
	for _, in := range all {
		checkSpanContract(t, in, Detect(in))
	}
}

func checkSpanContract(t *testing.T, in string, spans []Span) {
	t.Helper()
	prev := 0
	for _, s := range spans {
		if s.Start < prev || s.End <= s.Start || s.End > len(in) || s.Kind == "" {
			t.Fatalf("bad span %+v (prev end %d, len %d) in %q", s, prev, len(in), in)
		}
		prev = s.End
	}
}

// TestDetectHostileInputs runs shapes that would be quadratic or worse for
// a backtracking detector (many separators, huge keys and values, unclosed
// quotes and PEM blocks). There is no timing assertion: a super-linear
// detector shows up as a test that takes minutes, and in BenchmarkRedact.
func TestDetectHostileInputs(t *testing.T) {
	const n = 1 << 17
	inputs := []string{
		strings.Repeat("password=", n/9),
		strings.Repeat("a", n) + "=",
		strings.Repeat("token:", n/6),
		strings.Repeat("\"password\": \"", n/13),
		strings.Repeat("-----BEGIN RSA PRIVATE KEY-----\n", n/32),
		strings.Repeat("postgres://u:", n/13),
		strings.Repeat("secret ", n/7) + strings.Repeat("A1b", 20),
		strings.Repeat(`{"kind":"Secret","data":{"a":"`, n/30),
		"password: |\n" + strings.Repeat("  x\n", n/4),
		strings.Repeat("token=)", n/7),
		strings.Repeat(`x=\"`, n/4),
		strings.Repeat("eyJaaaaaaaaaaaa.", n/16),
		strings.Repeat("mysql ", n/6),
		strings.Repeat("mysql -u x", n/10) + " -pw",
		strings.Repeat("a://b:c@", n/8),
		strings.Repeat("x://u:p", n/7) + "@",
		strings.Repeat("AKIA", n/4),
		"sk-" + strings.Repeat("aB3", n/3),
		strings.Repeat(" -u a:", n/6),
		strings.Repeat("bearer ", n/7),
		strings.Repeat("a@b.", n/4),
		strings.Repeat("u:p@tcp(", n/8),
		strings.Repeat("token ", n/6) + strings.Repeat("9", 64),
		strings.Repeat("<password a='", n/13),
		strings.Repeat("<password>", n/10),
		strings.Repeat("<add key=\"password\" ", n/21),
		strings.Repeat("<x><![CDATA[", n/12),
		strings.Repeat("Cookie: a=", n/10),
		strings.Repeat("Set-Cookie: ", n/12),
		strings.Repeat("-b a=b; ", n/8),
		strings.Repeat("password is ", n/12),
		strings.Repeat("password \"", n/10),
		strings.Repeat("a:1:b:c:d\n", n/10),
		strings.Repeat("sshpass ", n/8) + " -p x",
		strings.Repeat("--password ", n/11),
		strings.Repeat("$6$", n/3),
		strings.Repeat("sig=", n/4),
		strings.Repeat("requirepass ", n/12),
		strings.Repeat("api_key x1\n", n/11),
		"api_key " + strings.Repeat("a1 ", n/3),
	}
	for _, in := range inputs {
		checkSpanContract(t, in, Detect(in))
		checkSpanContract(t, in, detect(in, true))
	}
}
