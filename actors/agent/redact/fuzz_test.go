package redact

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func addCorpusSeeds(f *testing.F) {
	for _, tc := range positives {
		f.Add(tc.in)
	}
	for _, tc := range negatives {
		f.Add(tc.in)
	}
	f.Add("password=<secret-abcdef> <secret-0123456789> <secre")
	f.Add("a\xffb password=x")
}

func FuzzDetect(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, emails := range []bool{false, true} {
			checkSpanContract(t, s, detect(s, emails))
		}
	})
}

// FuzzRedactRestore: Restore(Redact(s)) == s for valid UTF-8, and no
// detected secret survives redaction except where the same bytes also
// occur outside every secret.
func FuzzRedactRestore(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		p := NewPseudonymizer(testKey, Options{Emails: true})
		out, err := p.Redact(s)
		if !utf8.ValidString(s) {
			if !errors.Is(err, ErrRedactionFailed) || out != "" {
				t.Fatalf("invalid UTF-8: Redact = %q, %v; want failure", out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Redact(%q): %v", s, err)
		}
		if got := p.Restore(out); got != s {
			t.Fatalf("Restore(Redact(%q)) = %q (redacted %q)", s, got, out)
		}
		spans := detect(s, true)
		if len(spans) == 0 {
			return
		}
		// Blank out the secrets of s and the pseudonyms of out with a byte
		// no secret contains: what remains of out must not hold a secret
		// more often than what remains of s.
		var rest strings.Builder
		last := 0
		for _, sp := range spans {
			rest.WriteString(s[last:sp.Start])
			rest.WriteByte(0)
			last = sp.End
		}
		rest.WriteString(s[last:])
		outRest := pseudonymRE.ReplaceAllString(out, "\x00")
		for _, sp := range spans {
			sec := s[sp.Start:sp.End]
			if strings.IndexByte(sec, 0) >= 0 {
				continue
			}
			if strings.Count(outRest, sec) > strings.Count(rest.String(), sec) {
				t.Fatalf("secret %q (%s) survived: %q → %q", sec, sp.Kind, s, out)
			}
		}
	})
}

// FuzzStreamRestorer: any fragmentation of model output restores to what
// Restore gives for the whole. "@0" and "@1" in the input stand for two
// known pseudonyms so the fuzzer reaches them easily.
func FuzzStreamRestorer(f *testing.F) {
	p := NewPseudonymizer(testKey, Options{})
	red := mustRedact(f, p, "password=hunter2 token="+fakeGitHub)
	ps := pseudonymRE.FindAllString(red, -1)
	f.Add("Reset @0 and @1.", []byte{3, 9, 1, 1})
	f.Add("<<secret-@0<secret-12", []byte{1, 2, 3, 4, 5, 6})
	f.Add("x < y <secret- @1", []byte{0, 0, 7})
	f.Add("@2 and @3, x@3 <@3 @3>", []byte{2, 5, 11, 1})
	f.Fuzz(func(t *testing.T, text string, cuts []byte) {
		// @2 and @3: the same pseudonyms as a model may rewrite them.
		text = strings.NewReplacer("@0", ps[0], "@1", ps[1], "@2", strings.ToUpper(ps[0]), "@3", bare(ps[1])).Replace(text)
		want := p.Restore(text)
		var c collector
		r := p.NewStreamRestorer(c.emit)
		rest := text
		for _, n := range cuts {
			k := min(int(n), len(rest))
			r.Write(rest[:k])
			rest = rest[k:]
		}
		r.Write(rest)
		r.Flush()
		if c.text() != want {
			t.Fatalf("stream of %q cut %v: got %q, want %q", text, cuts, c.text(), want)
		}
	})
}

// FuzzArgumentsRoundTrip: tool-call arguments come back equal (as JSON
// values when valid JSON, byte for byte otherwise) and valid JSON stays
// valid.
func FuzzArgumentsRoundTrip(f *testing.F) {
	f.Add(`{"command":"psql postgres://app:S3cr3t!@db:5432/x","env":{"PGPASSWORD":"hunter2"},"n":[1,2.5e3,null]}`)
	f.Add(`{"headers":{"Authorization":"Bearer abc.def"},"k":"\u003csecret-abcdef\u003e"}`)
	f.Add(`"password=x"`)
	f.Add(`{password: x`)
	f.Fuzz(func(t *testing.T, args string) {
		p := NewPseudonymizer(testKey, Options{})
		red, _, err := p.redactArguments(args)
		if !utf8.ValidString(args) {
			if !errors.Is(err, ErrRedactionFailed) {
				t.Fatalf("invalid UTF-8 accepted: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("redactArguments(%q): %v", args, err)
		}
		back := p.restoreArguments(red)
		if !json.Valid([]byte(args)) {
			// Text arguments are redacted as text, so Restore inverts them.
			// (Redaction can turn invalid JSON valid, e.g. a raw control
			// byte replaced by a pseudonym; restoreArguments then treats
			// the model's copy as JSON, which is what it is.)
			if got := p.Restore(red); got != args {
				t.Fatalf("text arguments: %q → %q → %q", args, red, got)
			}
			if !json.Valid([]byte(red)) && back != args {
				t.Fatalf("text arguments: %q → %q → %q", args, red, back)
			}
			return
		}
		if !json.Valid([]byte(red)) {
			t.Fatalf("redacted JSON is invalid: %q → %q", args, red)
		}
		var a, b any
		_ = json.Unmarshal([]byte(args), &a)
		_ = json.Unmarshal([]byte(back), &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("JSON arguments: %q → %q → %q", args, red, back)
		}
	})
}
