package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	testKey      = []byte("case-key-0123456789abcdef")
	otherKey     = []byte("case-key-fedcba9876543210")
	pseudonymRE  = regexp.MustCompile(`<secret-[0-9a-f]{6,64}>`)
	corpusJoined = func() string {
		var b strings.Builder
		for _, tc := range positives {
			b.WriteString(tc.in + "\n")
		}
		for _, tc := range negatives {
			b.WriteString(tc.in + "\n")
		}
		return b.String()
	}()
)

func mustRedact(t testing.TB, p *Pseudonymizer, in string) string {
	t.Helper()
	out, err := p.Redact(in)
	if err != nil {
		t.Fatalf("Redact(%q): %v", in, err)
	}
	return out
}

func TestRedactRestoreCorpus(t *testing.T) {
	cases := append([]corpusCase(nil), positives...)
	for _, n := range negatives {
		cases = append(cases, corpusCase{name: n.name, in: n.in})
	}
	cases = append(cases, corpusCase{name: "everything", in: corpusJoined})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPseudonymizer(testKey, Options{})
			out := mustRedact(t, p, tc.in)
			for _, f := range tc.want {
				if strings.Contains(out, f.secret) {
					t.Errorf("redacted text still contains %q: %q", f.secret, out)
				}
			}
			if len(tc.want) == 0 && tc.name != "everything" && out != tc.in {
				t.Errorf("text without secrets changed:\n in %q\nout %q", tc.in, out)
			}
			if got := p.Restore(out); got != tc.in {
				t.Errorf("Restore(Redact(x)) != x\n   x %q\n got %q", tc.in, got)
			}
		})
	}
}

func TestPseudonymIsKeyedHMAC(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	out := mustRedact(t, p, "DB_PASSWORD=hunter2")
	m := hmac.New(sha256.New, testKey)
	m.Write([]byte("hunter2"))
	want := "DB_PASSWORD=<secret-" + hex.EncodeToString(m.Sum(nil))[:6] + ">"
	if out != want {
		t.Errorf("Redact = %q, want %q", out, want)
	}
}

func TestPseudonymsStablePerCase(t *testing.T) {
	a := NewPseudonymizer(testKey, Options{})
	b := NewPseudonymizer(testKey, Options{}) // same case, e.g. after a restart
	c := NewPseudonymizer(otherKey, Options{})
	turn1 := "psql postgres://app:S3cr3t!@db:5432/x and token=" + fakeGitHub
	turn2 := "still failing with " + fakeGitHub + " against postgres://app:S3cr3t!@db:5432/x"
	ra1, ra2 := mustRedact(t, a, turn1), mustRedact(t, a, turn2)
	rb2, rb1 := mustRedact(t, b, turn2), mustRedact(t, b, turn1)
	rc1 := mustRedact(t, c, turn1)
	if ra1 != rb1 || ra2 != rb2 {
		t.Errorf("same key, different pseudonyms:\n%q\n%q\n%q\n%q", ra1, rb1, ra2, rb2)
	}
	pa, pc := pseudonymRE.FindAllString(ra1, -1), pseudonymRE.FindAllString(rc1, -1)
	if len(pa) != 2 || len(pc) != 2 {
		t.Fatalf("want 2 pseudonyms each, got %q and %q", pa, pc)
	}
	for i := range pa {
		if pa[i] == pc[i] {
			t.Errorf("different cases share pseudonym %s", pa[i])
		}
	}
	// The same secret in both turns of a case gets the same pseudonym.
	if p2 := pseudonymRE.FindAllString(ra2, -1); len(p2) != 2 || p2[0] != pa[1] || p2[1] != pa[0] {
		t.Errorf("turn 2 pseudonyms %q do not match turn 1 %q", p2, pa)
	}
	if a.Count() != 2 {
		t.Errorf("Count = %d, want 2", a.Count())
	}
}

// TestPseudonymCollision searches two secrets whose pseudonyms share the
// first 6 hex digits under testKey; the newer one must get 8 digits.
func TestPseudonymCollision(t *testing.T) {
	seen := map[string]string{}
	var first, second string
	for i := 0; first == ""; i++ {
		s := fmt.Sprintf("pw-%d", i)
		m := hmac.New(sha256.New, testKey)
		m.Write([]byte(s))
		h := hex.EncodeToString(m.Sum(nil))[:6]
		if o, ok := seen[h]; ok {
			first, second = o, s
		}
		seen[h] = s
	}
	p := NewPseudonymizer(testKey, Options{})
	in := "password=" + first + " then password=" + second + " and again password=" + first
	out := mustRedact(t, p, in)
	ps := pseudonymRE.FindAllString(out, -1)
	if len(ps) != 3 || len(ps[0]) != len("<secret->")+6 || len(ps[1]) != len("<secret->")+8 || ps[2] != ps[0] {
		t.Fatalf("pseudonyms %q: want 6 hex, 8 hex, then the first again", ps)
	}
	if ps[1][:len("<secret-")+6] != ps[0][:len("<secret-")+6] {
		t.Fatalf("%s and %s do not collide on 6 digits", ps[0], ps[1])
	}
	if got := p.Restore(out); got != in {
		t.Errorf("Restore = %q, want %q", got, in)
	}
}

func TestRedactFailsClosed(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	for _, in := range []string{"password=\xff\xfe", "ok text \xc3"} {
		out, err := p.Redact(in)
		if !errors.Is(err, ErrRedactionFailed) || out != "" {
			t.Errorf("Redact(%q) = %q, %v; want \"\", ErrRedactionFailed", in, out, err)
		}
	}
	short := NewPseudonymizer([]byte("short"), Options{})
	if _, err := short.Redact("nothing secret here"); !errors.Is(err, ErrRedactionFailed) {
		t.Errorf("short key: err = %v, want ErrRedactionFailed", err)
	}
	if _, err := NewPseudonymizer(nil, Options{}).Redact(""); !errors.Is(err, ErrRedactionFailed) {
		t.Errorf("nil key: err = %v, want ErrRedactionFailed", err)
	}
}

func TestCheckSpansRejectsInconsistency(t *testing.T) {
	text := "héllo world"
	for _, spans := range [][]Span{
		{{Start: 3, End: 2}},
		{{Start: 0, End: 99}},
		{{Start: 0, End: 4}, {Start: 3, End: 6}},
		{{Start: 2, End: 4}}, // splits "é"
	} {
		if err := checkSpans(text, spans); !errors.Is(err, ErrRedactionFailed) {
			t.Errorf("checkSpans(%v) = %v, want ErrRedactionFailed", spans, err)
		}
	}
}

func TestRestoreLeavesUnknownPseudonyms(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	red := mustRedact(t, p, "token=abc123XYZ")
	in := "use " + strings.TrimPrefix(red, "token=") + ", not <secret-000000> or <secret-12345> or <secret-ABCDEF>"
	want := "use abc123XYZ, not <secret-000000> or <secret-12345> or <secret-ABCDEF>"
	if got := p.Restore(in); got != want {
		t.Errorf("Restore = %q, want %q", got, want)
	}
}

// TestRestoreReadsRewrittenPseudonyms: a model that upper-cases a
// pseudonym or drops its brackets still shows the engineer the real value;
// a pseudonym inside a longer name is that name, not a pseudonym.
func TestRestoreReadsRewrittenPseudonyms(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	ps := strings.TrimPrefix(mustRedact(t, p, "password=hunter2"), "password=")
	bare := strings.TrimSuffix(strings.TrimPrefix(ps, "<"), ">") // secret-3f9a1c
	for in, want := range map[string]string{
		"exact " + ps + ".":                                 "exact hunter2.",
		"upper " + strings.ToUpper(ps) + ".":                "upper hunter2.",
		"bare " + bare + ".":                                "bare hunter2.",
		"PASSWORD=" + strings.ToUpper(bare):                 "PASSWORD=hunter2",
		"open <" + bare + " close":                          "open hunter2 close",
		"`" + bare + ">`":                                   "`hunter2`",
		"(" + bare + ")":                                    "(hunter2)",
		"k8s db-" + bare + " and " + bare + "z":             "k8s db-" + bare + " and " + bare + "z",
		"path /etc/" + bare + " and x." + bare:              "path /etc/" + bare + " and x." + bare,
		"longer " + bare + "0 and " + ps[:len(ps)-1] + "a>": "longer " + bare + "0 and " + ps[:len(ps)-1] + "a>",
	} {
		if got := p.Restore(in); got != want {
			t.Errorf("Restore(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRewrittenLiteralsRoundTrip: text that holds a rewritten form of one
// of the case's pseudonyms comes back unchanged too, so Restore(Redact(s))
// == s still holds.
func TestRewrittenLiteralsRoundTrip(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	ps := strings.TrimPrefix(mustRedact(t, p, "password=hunter2"), "password=")
	bare := strings.TrimSuffix(strings.TrimPrefix(ps, "<"), ">")
	in := "seen " + strings.ToUpper(ps) + " and " + bare + " and " + strings.ToUpper(bare)
	out := mustRedact(t, p, in)
	if strings.Contains(out, bare) || strings.Contains(out, strings.ToUpper(bare)) {
		t.Errorf("rewritten pseudonyms must be redacted as literals: %q", out)
	}
	if got := p.Restore(out); got != in {
		t.Errorf("Restore(Redact(%q)) = %q", in, got)
	}
}

// TestLiteralPseudonymsRoundTrip: text that already holds something shaped
// like a pseudonym must come back unchanged, even if it is one this case
// handed out.
func TestLiteralPseudonymsRoundTrip(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	first := mustRedact(t, p, "password=hunter2")
	in := "the UI showed " + strings.TrimPrefix(first, "password=") + " and <secret-abcdef>"
	out := mustRedact(t, p, in)
	if got := p.Restore(out); got != in {
		t.Errorf("Restore(Redact(%q)) = %q", in, got)
	}
}

func TestTableIsBounded(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	p.maxEntries = 3
	var outs []string
	for i := range 5 {
		outs = append(outs, mustRedact(t, p, fmt.Sprintf("password=pw-%d", i)))
	}
	if p.Count() != 3 {
		t.Errorf("Count = %d, want 3", p.Count())
	}
	if got := p.Restore(outs[0]); got != outs[0] {
		t.Errorf("evicted pseudonym restored to %q; it must stay a pseudonym", got)
	}
	if got := p.Restore(outs[4]); got != "password=pw-4" {
		t.Errorf("recent pseudonym restored to %q", got)
	}
	p.maxEntries, p.maxBytes = 100, 10
	mustRedact(t, p, "password=0123456789abcdef")
	if p.Count() != 1 {
		t.Errorf("byte bound: Count = %d, want 1 (the newest entry stays)", p.Count())
	}
}

func TestPseudonymizerConcurrentUse(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				in := fmt.Sprintf("password=g%d-%d token=shared-Secret-1", g, i%7)
				out, err := p.Redact(in)
				if err != nil {
					t.Error(err)
					return
				}
				if got := p.Restore(out); got != in {
					t.Errorf("Restore = %q, want %q", got, in)
					return
				}
				_ = p.Count()
			}
		}()
	}
	wg.Wait()
}
