package embed

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// chunk is one piece of a document's text: a section body (or part of one)
// and the markdown headings above it. Start and End are byte offsets of
// Body in the extracted text.
type chunk struct {
	N       int
	Heading []string
	Body    string
	Start   int
	End     int
}

// storedChunk is a chunk as kept under c/<docID>/<n>.
type storedChunk struct {
	DocumentID string   `json:"document_id"`
	N          int      `json:"n"`
	Heading    []string `json:"heading,omitempty"`
	Body       string   `json:"body"`
}

// indexText is what the lexical index sees: the document title (unless the
// first heading already is the title), the heading path, then the body, so
// that headings and titles are searchable.
func (c storedChunk) indexText(title string) string {
	var b strings.Builder
	if title != "" && (len(c.Heading) == 0 || !strings.EqualFold(c.Heading[0], title)) {
		b.WriteString(title)
		b.WriteString("\n")
	}
	for _, h := range c.Heading {
		b.WriteString(h)
		b.WriteString("\n")
	}
	b.WriteString(c.Body)
	return b.String()
}

// section is a run of lines under one heading path.
type section struct {
	heading []string
	start   int // byte offset of the body
	end     int
}

// splitSections cuts markdown-ish text at ATX headings ("# …" to
// "###### …"), ignoring lines inside ``` or ~~~ fences, where "#" is
// usually a shell comment.
func splitSections(text string) []section {
	var (
		out     []section
		path    []string
		levels  []int
		cur     = section{start: 0}
		fence   string
		lineBeg = 0
	)
	for lineBeg <= len(text) {
		nl := strings.IndexByte(text[lineBeg:], '\n')
		lineEnd := len(text)
		next := len(text) + 1
		if nl >= 0 {
			lineEnd = lineBeg + nl
			next = lineEnd + 1
		}
		line := strings.TrimRight(text[lineBeg:lineEnd], "\r")
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
		case strings.HasPrefix(trimmed, "```"):
			fence = "```"
		case strings.HasPrefix(trimmed, "~~~"):
			fence = "~~~"
		default:
			if lvl, title, ok := headingLine(trimmed, len(line)-len(trimmed)); ok {
				cur.end = lineBeg
				out = append(out, cur)
				for len(levels) > 0 && levels[len(levels)-1] >= lvl {
					levels = levels[:len(levels)-1]
					path = path[:len(path)-1]
				}
				levels = append(levels, lvl)
				path = append(path, title)
				cur = section{heading: append([]string(nil), path...), start: min(next, len(text))}
			}
		}
		lineBeg = next
	}
	cur.end = len(text)
	return append(out, cur)
}

// headingLine recognises "## Title" (at most three leading spaces).
func headingLine(s string, indent int) (int, string, bool) {
	if indent > 3 {
		return 0, "", false
	}
	lvl := 0
	for lvl < len(s) && s[lvl] == '#' {
		lvl++
	}
	if lvl == 0 || lvl > 6 || (lvl < len(s) && s[lvl] != ' ' && s[lvl] != '\t') {
		return 0, "", false
	}
	title := strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s[lvl:]), "#"))
	if title == "" {
		return 0, "", false
	}
	return lvl, title, true
}

// chunkText cuts text into chunks of at most size bytes of body each.
// Sections smaller than size are one chunk; larger ones are split at word
// boundaries with overlap bytes shared between neighbours. A word longer
// than the chunk is cut at a rune boundary. Chunks whose body is only
// whitespace are dropped.
func chunkText(text string, size, overlap int) []chunk {
	var out []chunk
	for _, s := range splitSections(text) {
		for _, p := range splitBody(text, s.start, s.end, size, overlap) {
			body := text[p[0]:p[1]]
			if strings.TrimSpace(body) == "" {
				continue
			}
			out = append(out, chunk{N: len(out), Heading: s.heading, Body: body, Start: p[0], End: p[1]})
		}
	}
	return out
}

// splitBody returns [start,end) byte ranges covering text[lo:hi] in pieces
// of at most size bytes; consecutive pieces overlap by about overlap bytes.
func splitBody(text string, lo, hi, size, overlap int) [][2]int {
	// Leading and trailing whitespace carries nothing.
	for lo < hi && isSpaceByte(text[lo]) {
		lo++
	}
	for hi > lo && isSpaceByte(text[hi-1]) {
		hi--
	}
	if lo >= hi {
		return nil
	}
	var out [][2]int
	start := lo
	for {
		if hi-start <= size {
			return append(out, [2]int{start, hi})
		}
		limit := start + size
		cut := -1
		for i := limit; i > start+size/2; i-- { // prefer the last space in the back half
			if isSpaceByte(text[i]) {
				cut = i
				break
			}
		}
		if cut < 0 { // one enormous word: cut at a rune boundary
			cut = limit
			for cut > start+1 && !utf8.RuneStart(text[cut]) {
				cut--
			}
		}
		end := cut
		for end > start && isSpaceByte(text[end-1]) {
			end--
		}
		out = append(out, [2]int{start, end})
		// The next piece starts overlap bytes back, at the start of a word.
		next := cut - overlap
		if next <= start {
			next = start + 1
		}
		for next < cut && !(isSpaceByte(text[next-1]) && !isSpaceByte(text[next])) {
			next++
		}
		for next < hi && isSpaceByte(text[next]) {
			next++
		}
		for next < hi && !utf8.RuneStart(text[next]) {
			next++
		}
		start = next
		if start >= hi {
			return out
		}
	}
}

func isSpaceByte(c byte) bool { return c < utf8.RuneSelf && unicode.IsSpace(rune(c)) }
