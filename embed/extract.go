package embed

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// sniffLen is how much of an upload is read to decide its format.
const sniffLen = 512

// Formats the extractor understands.
const (
	FormatMarkdown = "markdown"
	FormatText     = "text"
	FormatHTML     = "html"
	FormatJSON     = "json"
	FormatYAML     = "yaml"
	FormatCSV      = "csv"
	FormatLog      = "log"
	FormatPDF      = "pdf"
)

var extFormats = map[string]string{
	".md": FormatMarkdown, ".markdown": FormatMarkdown, ".mdx": FormatMarkdown,
	".txt": FormatText, ".text": FormatText, ".rst": FormatText,
	".html": FormatHTML, ".htm": FormatHTML, ".xhtml": FormatHTML,
	".json": FormatJSON, ".ndjson": FormatJSON, ".jsonl": FormatJSON,
	".yaml": FormatYAML, ".yml": FormatYAML,
	".csv": FormatCSV,
	".log": FormatLog, ".out": FormatLog, ".err": FormatLog,
	".pdf": FormatPDF,
}

// SupportedExtension reports whether files with this name are ingested by
// the CLI's directory walk.
func SupportedExtension(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	_, ok := extFormats[ext]
	return ok
}

// detectFormat decides the format from the first bytes of the content,
// using the file extension only to break ties between text formats.
func detectFormat(head []byte, filename string) (string, error) {
	ext := strings.ToLower(filepath.Ext(filename))
	if bytes.HasPrefix(head, []byte("%PDF-")) {
		return FormatPDF, nil
	}
	ct := http.DetectContentType(head)
	switch {
	case strings.HasPrefix(ct, "image/"), strings.HasPrefix(ct, "audio/"), strings.HasPrefix(ct, "video/"):
		return "", fmt.Errorf("%w: %s files are not supported: upload text, markdown, HTML, JSON, YAML, CSV, logs or PDF", ErrUnsupported, ct)
	case ct == "application/zip", ct == "application/x-gzip", ct == "application/x-rar-compressed",
		ct == "application/wasm", ct == "application/vnd.ms-fontobject", ct == "application/octet-stream":
		return "", fmt.Errorf("%w: binary content (%s) is not supported: upload text, markdown, HTML, JSON, YAML, CSV, logs or PDF", ErrUnsupported, ct)
	}
	if !textLike(head) {
		return "", fmt.Errorf("%w: binary content is not supported: upload text, markdown, HTML, JSON, YAML, CSV, logs or PDF", ErrUnsupported)
	}
	byExt, known := extFormats[ext]
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	lower := bytes.ToLower(trimmed)
	switch {
	case strings.HasPrefix(ct, "text/html"), bytes.HasPrefix(lower, []byte("<!doctype html")), bytes.HasPrefix(lower, []byte("<html")):
		if byExt == FormatMarkdown {
			return FormatMarkdown, nil // markdown may embed HTML
		}
		return FormatHTML, nil
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		if known && byExt != FormatText && byExt != FormatJSON {
			return byExt, nil // "[link](…)" markdown, a YAML flow list, a log line "[INFO]"
		}
		if trimmed[0] == '[' && !json.Valid(trimmed) && !looksLikeJSONArray(trimmed) {
			return FormatText, nil
		}
		return FormatJSON, nil
	}
	if known {
		return byExt, nil
	}
	if bytes.HasPrefix(trimmed, []byte("# ")) || bytes.Contains(head, []byte("\n## ")) {
		return FormatMarkdown, nil
	}
	return FormatText, nil
}

// looksLikeJSONArray accepts the start of a JSON array whose first element
// is an object, string, number or nested array.
func looksLikeJSONArray(b []byte) bool {
	rest := bytes.TrimLeft(b[1:], " \t\r\n")
	return len(rest) > 0 && strings.IndexByte("{[\"-0123456789]", rest[0]) >= 0
}

// textLike reports whether b looks like UTF-8 text: no NUL bytes and valid
// UTF-8 except for a rune cut at the end.
func textLike(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:])
		}
		i += size
	}
	return true
}

// TitleFor returns the title the CLI gives a file: its first markdown
// heading, else its name without the extension.
func TitleFor(filename string, head []byte) string {
	format, err := detectFormat(head, filename)
	if err != nil {
		format = FormatText
	}
	return titleFor(filename, head, format)
}

func titleFor(filename string, head []byte, format string) string {
	if format == FormatMarkdown {
		for _, line := range strings.Split(string(head), "\n") {
			line = strings.TrimSpace(line)
			if t, ok := strings.CutPrefix(line, "# "); ok && strings.TrimSpace(t) != "" {
				return strings.TrimSpace(t)
			}
		}
	}
	base := filepath.Base(filename)
	if base == "." || base == "/" || base == "" {
		return "Untitled document"
	}
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// errOutputTooLarge stops an extractor whose output exceeds its cap.
var errOutputTooLarge = errors.New("extracted text exceeds the size limit")

// capWriter is a strings.Builder that refuses to grow beyond max bytes.
type capWriter struct {
	b   strings.Builder
	max int64
}

func (w *capWriter) WriteString(s string) error {
	if int64(w.b.Len()+len(s)) > w.max {
		return errOutputTooLarge
	}
	w.b.WriteString(s)
	return nil
}

// extract turns the content of r, in the given format, into markdown-ish
// text the chunker understands. At most max bytes are read and at most
// 2×max bytes produced (flattened JSON repeats its paths).
func extract(r io.Reader, format string, max int64) (string, error) {
	lr := &io.LimitedReader{R: r, N: max + 1}
	w := &capWriter{max: 2 * max}
	var err error
	switch format {
	case FormatHTML:
		var raw []byte
		if raw, err = io.ReadAll(lr); err == nil {
			err = extractHTML(string(raw), w)
		}
	case FormatJSON:
		var raw []byte
		if raw, err = io.ReadAll(lr); err == nil {
			if jerr := extractJSON(bytes.NewReader(raw), w); jerr != nil {
				w.b.Reset() // not JSON after all: index it as text
				err = w.WriteString(string(raw))
			}
		}
	case FormatPDF:
		var raw []byte
		if raw, err = io.ReadAll(lr); err == nil && lr.N > 0 {
			err = extractPDF(raw, w)
		}
	case FormatCSV:
		var raw []byte
		if raw, err = io.ReadAll(lr); err == nil {
			if cerr := extractCSV(bytes.NewReader(raw), w); cerr != nil {
				w.b.Reset()
				err = w.WriteString(string(raw))
			}
		}
	default: // markdown, text, yaml, log
		br := bufio.NewReader(lr)
		buf := make([]byte, 64<<10)
		for {
			n, rerr := br.Read(buf)
			if n > 0 {
				if err = w.WriteString(string(buf[:n])); err != nil {
					break
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
		}
	}
	if lr.N <= 0 {
		return "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if errors.Is(err, errOutputTooLarge) {
		return "", fmt.Errorf("%w: %v", ErrTooLarge, err)
	}
	if err != nil {
		return "", err
	}
	text := strings.ToValidUTF8(strings.ReplaceAll(w.b.String(), "\r\n", "\n"), "\uFFFD")
	if strings.TrimSpace(text) == "" {
		return "", fmt.Errorf("%w: no text could be extracted", ErrEmpty)
	}
	return text, nil
}

// blockTags start a new line in extracted HTML text.
var blockTags = map[string]bool{
	"p": true, "div": true, "br": true, "li": true, "tr": true, "td": true, "th": true, "pre": true,
	"table": true, "section": true, "article": true, "ul": true, "ol": true, "dt": true, "dd": true,
	"blockquote": true, "hr": true, "header": true, "footer": true, "main": true, "nav": true, "code": false,
}

// skipTags have content that is not document text.
var skipTags = map[string]bool{"script": true, "style": true, "head": true, "noscript": true, "template": true, "svg": true}

// extractHTML writes the visible text of an HTML page: script, style and
// head are dropped, tags stripped, entities decoded, and h1–h6 become
// markdown "#" lines so the chunker keeps the document's structure. It is a
// forgiving scanner, not a parser: malformed markup degrades to text.
func extractHTML(src string, w *capWriter) error {
	var text strings.Builder // pending text run
	inPre := 0
	flush := func() error {
		s := html.UnescapeString(text.String())
		text.Reset()
		if inPre == 0 {
			s = strings.Join(strings.Fields(s), " ")
			if s == "" {
				return nil
			}
			s += " "
		}
		return w.WriteString(s)
	}
	i := 0
	for i < len(src) {
		lt := strings.IndexByte(src[i:], '<')
		if lt < 0 {
			text.WriteString(src[i:])
			break
		}
		text.WriteString(src[i : i+lt])
		i += lt
		if strings.HasPrefix(src[i:], "<!--") {
			end := strings.Index(src[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			continue
		}
		gt := strings.IndexByte(src[i:], '>')
		if gt < 0 {
			text.WriteString(src[i:])
			break
		}
		tag := src[i+1 : i+gt]
		i += gt + 1
		closing := strings.HasPrefix(tag, "/")
		name := strings.ToLower(strings.TrimPrefix(tag, "/"))
		if j := strings.IndexAny(name, " \t\r\n/"); j >= 0 {
			name = name[:j]
		}
		if name == "" || !isTagName(name) {
			if !closing && (name == "" || (name[0] != '!' && name[0] != '?')) {
				text.WriteString("<" + tag + ">") // "a < b" in text, not a tag
			}
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		switch {
		case skipTags[name] && !closing && !strings.HasSuffix(tag, "/"):
			end := strings.Index(strings.ToLower(src[i:]), "</"+name)
			if end < 0 {
				return nil
			}
			i += end
			if gt := strings.IndexByte(src[i:], '>'); gt >= 0 {
				i += gt + 1
			} else {
				i = len(src)
			}
		case len(name) == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6':
			if closing {
				if err := w.WriteString("\n\n"); err != nil {
					return err
				}
			} else if err := w.WriteString("\n\n" + strings.Repeat("#", int(name[1]-'0')) + " "); err != nil {
				return err
			}
		case name == "pre":
			if closing {
				inPre = max(inPre-1, 0)
			} else {
				inPre++
			}
			if err := w.WriteString("\n"); err != nil {
				return err
			}
		case blockTags[name]:
			if err := w.WriteString("\n"); err != nil {
				return err
			}
		}
	}
	return flush()
}

func isTagName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == ':') {
			return false
		}
	}
	return s[0] >= 'a' && s[0] <= 'z'
}

// maxJSONDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxJSONDepth = 64

// extractJSON flattens one or more JSON values into "a.b[0].c: value" lines,
// reading tokens as a stream.
func extractJSON(r io.Reader, w *capWriter) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var walk func(path string, depth int) error
	walk = func(path string, depth int) error {
		if depth > maxJSONDepth {
			return fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			empty := true
			switch t {
			case '{':
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return err
					}
					key, _ := kt.(string)
					p := key
					if path != "" {
						p = path + "." + key
					}
					if err := walk(p, depth+1); err != nil {
						return err
					}
					empty = false
				}
			case '[':
				for n := 0; dec.More(); n++ {
					if err := walk(path+"["+strconv.Itoa(n)+"]", depth+1); err != nil {
						return err
					}
					empty = false
				}
			default:
				return fmt.Errorf("unexpected %v", t)
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return err
			}
			if empty && path != "" {
				return w.WriteString(path + ": (empty)\n")
			}
			return nil
		case nil:
			return w.WriteString(label(path) + ": null\n")
		default:
			return w.WriteString(label(path) + ": " + fmt.Sprint(t) + "\n")
		}
	}
	for n := 0; ; n++ {
		err := walk("", 0)
		if err == io.EOF && n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func label(path string) string {
	if path == "" {
		return "value"
	}
	return path
}

// extractCSV writes each row after the header as "col: value; …".
func extractCSV(r io.Reader, w *capWriter) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return err
	}
	header = append([]string(nil), header...)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var line strings.Builder
		for i, v := range rec {
			if strings.TrimSpace(v) == "" {
				continue
			}
			col := "column" + strconv.Itoa(i+1)
			if i < len(header) && strings.TrimSpace(header[i]) != "" {
				col = strings.TrimSpace(header[i])
			}
			if line.Len() > 0 {
				line.WriteString("; ")
			}
			line.WriteString(col + ": " + strings.TrimSpace(v))
		}
		if line.Len() > 0 {
			if err := w.WriteString(line.String() + "\n"); err != nil {
				return err
			}
		}
	}
}
