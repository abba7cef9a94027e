package embed

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct{ head, name, want string }{
		{"# Title\n\ntext", "a.md", FormatMarkdown},
		{"[link](x) text", "a.md", FormatMarkdown},
		{"# Title\n\ntext", "noext", FormatMarkdown},
		{"<!DOCTYPE html><html>", "page", FormatHTML},
		{"<html><body>", "a.txt", FormatHTML},
		{`{"a":1}`, "data", FormatJSON},
		{`{"a":1}`, "a.txt", FormatJSON},
		{"[INFO] started", "a.log", FormatLog},
		{"[INFO] started", "noext", FormatText},
		{"a,b\n1,2\n", "x.csv", FormatCSV},
		{"key: value\n", "x.yml", FormatYAML},
		{"plain words", "", FormatText},
		{"%PDF-1.5\n%\xe2\xe3\xcf\xd3", "x.md", FormatPDF},
		{"%PDF-1.7", "", FormatPDF},
	}
	for _, tc := range tests {
		got, err := detectFormat([]byte(tc.head), tc.name)
		if err != nil || got != tc.want {
			t.Errorf("detect(%q, %q) = %q, %v; want %q", tc.head, tc.name, got, err, tc.want)
		}
	}
	for _, head := range []string{"\x89PNG\r\n\x1a\n", "GIF89a\x00", "PK\x03\x04zip", "\xff\xfe\x00bin"} {
		if _, err := detectFormat([]byte(head), "x.md"); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%q: %v", head, err)
		}
	}
}

func TestExtractHTML(t *testing.T) {
	src := `<html><head><title>T</title><style>p{}</style></head><body>
<h1>Runbook</h1><p>Check &lt;upstream&gt; &amp; logs.</p><!-- hidden -->
<h2>Fix</h2><script>evil()</script><ul><li>one</li><li>two</li></ul><pre>a  b
c</pre></body></html>`
	w := &capWriter{max: 1 << 20}
	if err := extractHTML(src, w); err != nil {
		t.Fatal(err)
	}
	out := w.b.String()
	for _, want := range []string{"# Runbook", "## Fix", "Check <upstream> & logs.", "one", "a  b\nc"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %q", want, out)
		}
	}
	for _, bad := range []string{"evil", "p{}", "hidden", "<li>"} {
		if strings.Contains(out, bad) {
			t.Errorf("kept %q in %q", bad, out)
		}
	}
	cs := chunkText(out, 1000, 200)
	if len(cs) != 2 || strings.Join(cs[1].Heading, "/") != "Runbook/Fix" {
		t.Errorf("chunks of extracted HTML: %+v", cs)
	}
}

func TestExtractJSONDepthAndFallback(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	out, err := extract(strings.NewReader(deep), FormatJSON, 1<<20)
	if err != nil || !strings.HasPrefix(out, "[[[") {
		t.Errorf("deep JSON should fall back to text: %v", err)
	}
	out, err = extract(strings.NewReader(`{"a":{"b":[{"c":true},null]}} {"d":"x"}`), FormatJSON, 1<<20)
	if err != nil || out != "a.b[0].c: true\na.b[1]: null\nd: x\n" {
		t.Errorf("got %q, %v", out, err)
	}
}

func FuzzExtractHTML(f *testing.F) {
	f.Add("<html><h1>x</h1><p>a &amp; b</p><script>s</script></html>")
	f.Add("<pre>a</pre></pre><h7>x<h1")
	f.Add("a < b > c <!-- x")
	f.Fuzz(func(t *testing.T, src string) {
		w := &capWriter{max: int64(4*len(src) + 64)}
		if err := extractHTML(src, w); err != nil && !errors.Is(err, errOutputTooLarge) {
			t.Fatal(err)
		}
		_ = chunkText(w.b.String(), 200, 50)
	})
}

func FuzzExtractJSON(f *testing.F) {
	f.Add(`{"a":[1,{"b":"c"}],"d":null}`)
	f.Add(`[[[[`)
	f.Add(`{"a":1}{"b":2}`)
	f.Fuzz(func(t *testing.T, src string) {
		out, err := extract(strings.NewReader(src), FormatJSON, 1<<16)
		if err == nil && strings.TrimSpace(out) == "" {
			t.Fatal("empty output without error")
		}
	})
}

// FuzzExtractAnyFormat: for every format, arbitrary bytes are detected and
// extracted without panicking, within the output cap, as valid UTF-8, or
// refused with one of the documented errors.
func FuzzExtractAnyFormat(f *testing.F) {
	f.Add([]byte("# Title\n\nbody\n"), "a.md")
	f.Add([]byte("key: value\nlist:\n  - a\n"), "c.yaml")
	f.Add([]byte("a,b\n1,\"2\n"), "d.csv")
	f.Add([]byte("<html><script>x</script><h1>T</h1>&amp;</html>"), "e.html")
	f.Add([]byte("%PDF-1.7"), "f.pdf")
	f.Add([]byte("\x89PNG\r\n\x1a\n"), "g.md")
	f.Add([]byte("2026-11-26 ERROR disk full\n"), "h.log")
	f.Add([]byte("\xff\xfe\x00h\x00i"), "i.txt")
	f.Fuzz(func(t *testing.T, body []byte, name string) {
		const max = 4 << 10
		head := body[:min(len(body), sniffLen)]
		format, err := detectFormat(head, name)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("detectFormat: undocumented error %v", err)
			}
			return
		}
		_ = titleFor(name, head, format)
		out, err := extract(bytes.NewReader(body), format, max)
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrEmpty) && (format != FormatPDF || !errors.Is(err, ErrUnsupported)) {
				t.Fatalf("extract %s: undocumented error %v", format, err)
			}
			return
		}
		// At most 2×max bytes are produced; replacing invalid bytes with
		// U+FFFD (3 bytes each) can triple that.
		if len(out) > 3*2*max || !utf8.ValidString(out) || strings.TrimSpace(out) == "" {
			t.Fatalf("extract %s: %d bytes, valid UTF-8 %v", format, len(out), utf8.ValidString(out))
		}
		for _, c := range chunkText(out, 200, 40) {
			if len(c.Body) == 0 {
				t.Fatal("empty chunk")
			}
		}
	})
}
