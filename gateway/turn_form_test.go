package gateway

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSanitizeFileName(t *testing.T) {
	for in, want := range map[string]string{
		"app.log":                         "app.log",
		"../../etc/passwd":                "passwd",
		`C:\Users\me\Desktop\x.log`:       "x.log",
		"a/b\\c/..":                       "file",
		"":                                "file",
		"  .  ":                           "file",
		"evil\x1b[31m.log":                "evil[31m.log",
		"gol\u202e.exe":                   "gol.exe",
		"tab\there\nnew\rline\x00nul.txt": "tabherenewlinenul.txt",
		"\xff\xfebad-utf8.txt":            "bad-utf8.txt",
		"dir/\u2066isolated\u2069.md":     "isolated.md",
		strings.Repeat("é", 200) + ".log": strings.Repeat("é", 127),
	} {
		got := sanitizeFileName(in)
		if got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
		if len(got) > maxFileNameBytes || !utf8.ValidString(got) || strings.ContainsAny(got, "/\\") {
			t.Errorf("sanitize(%q) = %q is not a safe base name", in, got)
		}
	}
}

func TestParseJobID(t *testing.T) {
	id := "case_0123456789abcdefghjkmnpqrs"
	if c, n, ok := parseJobID(jobID(id, 12)); !ok || c != id || n != 12 {
		t.Fatalf("round trip: %q %d %v", c, n, ok)
	}
	for _, bad := range []string{"", "turn.", "turn.x", "turn..3", "job." + id + ".1", "turn." + id + ".0",
		"turn." + id + ".-1", "turn." + id + ".+1", "turn." + id + ".1x", "turn." + strings.Repeat("c", 200) + ".1"} {
		if _, _, ok := parseJobID(bad); ok {
			t.Errorf("parseJobID(%q) accepted", bad)
		}
	}
}

func TestTurnText(t *testing.T) {
	f := turnForm{
		Query:         "why?",
		PastedContent: "paste\n",
		Files:         []turnFile{{Name: "a.log", Data: []byte("x ```` y")}, {Name: "empty.txt"}},
	}
	got, err := f.turnText()
	if err != nil {
		t.Fatal(err)
	}
	want := "why?\n\nPasted content:\n```\npaste\n```\n\nFile a.log:\n`````\nx ```` y\n`````\n\nFile empty.txt:\n```\n```"
	if got != want {
		t.Fatalf("turn text\n%q\nwant\n%q", got, want)
	}
	atts := f.attachmentResults("case_a", 3, time.Unix(0, 0))
	again := f.attachmentResults("case_a", 3, time.Unix(0, 0))
	if len(atts) != 3 || atts[0].SourceType != sourcePaste || atts[0].Filename != "pasted-content-3.txt" ||
		atts[1].FileID == atts[2].FileID || atts[1].FileID != again[1].FileID || atts[2].FileSize != 0 {
		t.Fatalf("attachments: %+v", atts)
	}
	if out := (turnForm{Query: "q"}).attachmentResults("c", 1, time.Now()); out == nil || len(out) != 0 {
		t.Fatalf("no attachments must be an empty array, got %#v", out)
	}
}

func TestCapReader(t *testing.T) {
	for _, tc := range []struct {
		n     int
		limit int64
		over  bool
	}{{10, 10, false}, {11, 10, true}, {0, 10, false}, {4096, 1000, true}} {
		b, err := readAll(&capReader{r: bytes.NewReader(make([]byte, tc.n)), left: tc.limit, limit: tc.limit})
		var mb *http.MaxBytesError
		if over := errors.As(err, &mb); over != tc.over || (!tc.over && (err != nil || len(b) != tc.n)) {
			t.Errorf("%d bytes, cap %d: %d read, err %v", tc.n, tc.limit, len(b), err)
		}
	}
}

func readAll(r *capReader) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// FuzzParseTurnMultipart feeds arbitrary bodies and boundaries to the turn
// parser: it must never panic, must only return the documented errors,
// and must never hold more than the caps allow.
func FuzzParseTurnMultipart(f *testing.F) {
	seed := func(fields map[string]string, files map[string]string) ([]byte, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for k, v := range fields {
			_ = w.WriteField(k, v)
		}
		for name, content := range files {
			fw, _ := w.CreateFormFile("files", name)
			_, _ = fw.Write([]byte(content))
		}
		_ = w.Close()
		return buf.Bytes(), w.Boundary()
	}
	b, bd := seed(map[string]string{"query": "hi", "intent_type": "status_transition",
		"intent_data": `{"to_state":"closed","user_confirmed":true}`}, map[string]string{"../x.log": "line\n"})
	f.Add(b, bd)
	b, bd = seed(map[string]string{"pasted_content": "p", "input_type": "page_capture", "source_url": "https://x"}, nil)
	f.Add(b, bd)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\n\x00\x01\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\n\r\n"), "b")
	f.Add([]byte("garbage"), "")
	const maxBody = 64 << 10
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		ctype := "multipart/form-data; boundary=\"" + strings.ReplaceAll(boundary, `"`, "") + "\""
		form, err := parseTurnForm(ctype, bytes.NewReader(body), maxBody)
		if err != nil {
			var ge *Error
			var mb *http.MaxBytesError
			if !errors.As(err, &ge) && !errors.As(err, &mb) {
				t.Fatalf("undocumented error %T %v", err, err)
			}
			if ge != nil && HTTPStatus(ge.Code) >= 500 {
				t.Fatalf("a client's body caused %s", ge.Code)
			}
			return
		}
		total := len(form.Query) + len(form.PastedContent)
		for _, file := range form.Files {
			total += len(file.Data)
			if !isText(file.Data) || len(file.Data) > maxTurnFileBytes || len(file.Name) > maxFileNameBytes || strings.ContainsAny(file.Name, "/\\") {
				t.Fatalf("accepted file %q (%d bytes)", file.Name, len(file.Data))
			}
		}
		if total > len(body) || len(form.Files) > maxTurnFiles {
			t.Fatalf("decoded %d bytes from a %d-byte body", total, len(body))
		}
		if text, err := form.turnText(); err == nil && len(text) > maxTurnTextBytes {
			t.Fatalf("turn text of %d bytes", len(text))
		}
		_ = form.attachmentResults("case_x", 1, time.Unix(0, 0))
	})
}
