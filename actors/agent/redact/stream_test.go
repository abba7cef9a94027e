package redact

import (
	"strings"
	"testing"
)

type collector struct {
	parts []string
}

func (c *collector) emit(s string) { c.parts = append(c.parts, s) }
func (c *collector) text() string  { return strings.Join(c.parts, "") }

// TestStreamRestorerEverySplit splits model output holding pseudonyms at
// every byte boundary (two fragments), and also feeds it byte by byte.
func TestStreamRestorerEverySplit(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	red := mustRedact(t, p, "password=hunter2 token="+fakeGitHub)
	ps := pseudonymRE.FindAllString(red, -1)
	if len(ps) != 2 {
		t.Fatalf("setup: pseudonyms %q", ps)
	}
	outputs := []string{
		"Try " + ps[0] + " for the database.",
		ps[0] + ps[1],
		"<" + ps[0] + "<secret-" + ps[1] + "<<secret->",
		"a < b and <secret-zz> and <secret-" + strings.Repeat("a", 70) + "> " + ps[1],
		"ends with a partial <secret-12",
		"upper " + strings.ToUpper(ps[0]) + " bare " + bare(ps[1]) + ", " + strings.ToUpper(bare(ps[0])),
		"names db-" + bare(ps[0]) + " " + bare(ps[1]) + "z s se sec " + bare(ps[1]),
		"<" + bare(ps[0]) + " open, " + bare(ps[1]) + "> close, ends bare " + bare(ps[0]),
		"stop " + bare(ps[0]) + ". host " + bare(ps[1]) + ".example.com " + bare(ps[0]) + "-x " + bare(ps[1]) + ".",
	}
	for _, out := range outputs {
		want := p.Restore(out)
		for cut := 0; cut <= len(out); cut++ {
			var c collector
			r := p.NewStreamRestorer(c.emit)
			r.Write(out[:cut])
			r.Write(out[cut:])
			r.Flush()
			if c.text() != want {
				t.Fatalf("split at %d of %q: got %q, want %q", cut, out, c.text(), want)
			}
		}
		var c collector
		r := p.NewStreamRestorer(c.emit)
		for i := 0; i < len(out); i++ {
			r.Write(out[i : i+1])
		}
		r.Flush()
		if c.text() != want {
			t.Fatalf("byte by byte %q: got %q, want %q", out, c.text(), want)
		}
	}
}

// bare is a pseudonym without its brackets, as a model may write it.
func bare(ps string) string { return strings.TrimSuffix(strings.TrimPrefix(ps, "<"), ">") }

// TestStreamRestorerEmitsEarly: only a possible pseudonym prefix is held.
func TestStreamRestorerEmitsEarly(t *testing.T) {
	p := NewPseudonymizer(testKey, Options{})
	ps := strings.TrimPrefix(mustRedact(t, p, "password=hunter2"), "password=")
	var c collector
	r := p.NewStreamRestorer(c.emit)
	steps := []struct{ write, emitted string }{
		{"The password ", "The password "},
		{"is <sec", "The password is "},
		{ps[len("<sec"):10], "The password is "},
		{ps[10:], "The password is hunter2"},
		{" (x <", "The password is hunter2 (x "},
		{" y)", "The password is hunter2 (x < y)"},
		{" <secret-", "The password is hunter2 (x < y) "},
	}
	for _, s := range steps {
		r.Write(s.write)
		if c.text() != s.emitted {
			t.Fatalf("after Write(%q): emitted %q, want %q", s.write, c.text(), s.emitted)
		}
	}
	r.Flush()
	if want := "The password is hunter2 (x < y) <secret-"; c.text() != want {
		t.Errorf("after Flush: %q, want %q", c.text(), want)
	}
	r.Flush() // idempotent
	if len(c.parts) != 7 {
		t.Errorf("emitted %d parts %q; empty parts must not be emitted", len(c.parts), c.parts)
	}
}

func TestStreamRestorerNilEmit(t *testing.T) {
	r := NewPseudonymizer(testKey, Options{}).NewStreamRestorer(nil)
	r.Write("hello <secret-")
	r.Flush()
}
