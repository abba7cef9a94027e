package agent

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/faultmaven/faultmaven/actors/agent/llm"
)

// firstSentenceOracle is firstSentence as first written: the whole line is
// normalised, then cut. The faster version must agree with it.
func firstSentenceOracle(s string, n int) string {
	line := ""
	for l := range strings.SplitSeq(s, "\n") {
		if strings.IndexFunc(l, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 {
			line = oneLine(l)
			break
		}
	}
	for i, r := range line {
		if (r == '.' || r == '?' || r == '!') && (i+1 == len(line) || line[i+1] == ' ') {
			line = line[:i+1]
			break
		}
	}
	return clipChars(line, n)
}

func FuzzFirstSentence(f *testing.F) {
	for _, s := range []string{
		"", "   \n\t", "The pod restarts. Then it dies.", "v1.2.3 is out\nsecond line.",
		"---\n  OOMKilled   after   deploy!  more", "what now?next", "3.14 is pi. yes",
		"ends with a dot.", "ünïcödé wörds… and more. x", "a\u00a0b\u2003c. d", "\xff\xfe bad. utf8",
		strings.Repeat("word ", 100) + "end.",
	} {
		f.Add(s, 200)
		f.Add(s, 5)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 1 || n > 400 {
			return
		}
		if got, want := firstSentence(s, n), firstSentenceOracle(s, n); got != want {
			t.Fatalf("firstSentence(%q, %d) = %q, want %q", s, n, got, want)
		}
	})
}

// toolsTokens counts from the tools' prepared request encoding; the count
// must be the one the tools' JSON array on the wire gives, built here
// independently of the llm package.
func TestToolsTokensMatchTheirJSON(t *testing.T) {
	tr := &turn{status: StatusInvestigating, hyps: []Hypothesis{{ID: "h1"}, {ID: "h<2>&"}}}
	var tools []llm.Tool
	var wire []any
	for i := range toolSpecs {
		s := &toolSpecs[i]
		tl := s.tool(tr)
		if tl.Name != s.name || tl.Description != s.description || tl.Parameters == nil {
			t.Fatalf("tool %q: got %q with parameters %v", s.name, tl.Name, tl.Parameters)
		}
		tools = append(tools, tl)
		wire = append(wire, map[string]any{"type": "function",
			"function": map[string]any{"name": tl.Name, "description": tl.Description, "parameters": tl.Parameters}})
	}
	if len(tools) < 5 {
		t.Fatalf("only %d tool specs", len(tools))
	}
	for k := 1; k <= len(tools); k++ {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(wire[:k]); err != nil {
			t.Fatal(err)
		}
		js := strings.TrimSuffix(buf.String(), "\n")
		if got, want := toolsTokens(tools[:k]), EstimateTokens(js)+8*k; got != want {
			t.Fatalf("%d tools: %d tokens, want %d", k, got, want)
		}
	}
}

func TestSanitizeDataDefusesDelimitersAndBadUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":          "plain text",
		"a <<<b>>> c":         "a ‹‹‹b››› c",
		"bad \xff byte":       "bad \uFFFD byte",
		"<<<\xfe":             "‹‹‹\uFFFD",
		"<< < >> >":           "<< < >> >",
		"<<<<<< nested >>>>>": "‹‹‹‹‹‹ nested ›››>>",
	} {
		if got := sanitizeData(in); got != want {
			t.Errorf("sanitizeData(%q) = %q, want %q", in, got, want)
		}
	}
}
