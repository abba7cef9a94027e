package gateway

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/faultmaven/faultmaven/actors/evidence"
)

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

// sunk is what a test sink received.
type sunk struct {
	name, data string
	paste      bool
	input, url string // the fields as the sink saw them
	readErr    error
}

func collect(out *[]sunk) uploadSink {
	return func(u turnUpload, f *turnFields) error {
		b, err := io.ReadAll(u.Body)
		*out = append(*out, sunk{name: u.Name, data: string(b), paste: u.Paste, input: f.InputType, url: f.SourceURL, readErr: err})
		return err
	}
}

func multipartReader(t *testing.T, parts ...formPart) *multipart.Reader {
	t.Helper()
	body, ctype := multipartBody(t, parts...)
	boundary := strings.TrimPrefix(ctype, "multipart/form-data; boundary=")
	return multipart.NewReader(strings.NewReader(body), boundary)
}

func TestParseTurnMultipart(t *testing.T) {
	// A short paste is held back until the fields after it have labelled it.
	var got []sunk
	f, err := parseTurnMultipart(multipartReader(t,
		formPart{name: "pasted_content", content: "HTTP 502"},
		formPart{name: "files", filename: "../a.log", content: "line\n"},
		formPart{name: "input_type", content: " page_capture "},
		formPart{name: "source_url", content: "https://grafana.example/d/1"},
		formPart{name: "query", content: "  why?  "},
		formPart{name: "query", content: "ignored: the first value wins"},
		formPart{name: "unknown", content: "read past"},
	), collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	if f.Query != "why?" || f.InputType != "page_capture" || f.SourceURL != "https://grafana.example/d/1" {
		t.Fatalf("fields %+v", f)
	}
	if len(got) != 2 || got[0].name != "a.log" || // multipart applies filepath.Base got[0].data != "line\n" || got[0].paste ||
		!got[1].paste || got[1].data != "HTTP 502" || got[1].input != "page_capture" || got[1].url == "" {
		t.Fatalf("uploads %+v", got)
	}

	// A paste longer than the lookahead streams at once, whole.
	long := strings.Repeat("p", pasteLookahead+10)
	got = nil
	if _, err := parseTurnMultipart(multipartReader(t,
		formPart{name: "pasted_content", content: long}, formPart{name: "input_type", content: "page_capture"},
	), collect(&got)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].data != long || got[0].input != "" {
		t.Fatalf("long paste: %d uploads, %d bytes, labelled %q", len(got), len(got[0].data), got[0].input)
	}

	// An empty paste is no paste.
	got = nil
	if _, err := parseTurnMultipart(multipartReader(t, formPart{name: "pasted_content"}), collect(&got)); err != nil || len(got) != 0 {
		t.Fatalf("empty paste: %v %+v", err, got)
	}

	// The sink's error ends the parse as is.
	sentinel := errors.New("store refused")
	_, err = parseTurnMultipart(multipartReader(t, formPart{name: "files", filename: "x", content: "x"}),
		func(turnUpload, *turnFields) error { return sentinel })
	if !errors.Is(err, sentinel) {
		t.Fatalf("sink error became %v", err)
	}

	// Limits.
	many := make([]formPart, maxTurnFiles+1)
	for i := range many {
		many[i] = formPart{name: "files", filename: "f.log", content: "x"}
	}
	for name, parts := range map[string][]formPart{
		"too many files": many,
		"long query":     {{name: "query", content: strings.Repeat("q", maxTurnTextBytes+1)}},
		"bad intent":     {{name: "intent_data", content: "[1]"}},
		"control chars":  {{name: "source_url", content: "https://x\x1b[2J"}},
		"not UTF-8":      {{name: "query", content: "\xff"}},
	} {
		got = nil
		_, err := parseTurnMultipart(multipartReader(t, parts...), collect(&got))
		var ge *Error
		if !errors.As(err, &ge) || ge.Code != CodeValidation {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A part cut off before its closing boundary must never look like a
// complete (short) file to the store.
func TestTruncatedPartIsNotAFile(t *testing.T) {
	body, ctype := multipartBody(t, formPart{name: "files", filename: "a.log", content: "complete line\npartial"})
	body = body[:strings.Index(body, "partial")+len("partial")] // no closing boundary
	boundary := strings.TrimPrefix(ctype, "multipart/form-data; boundary=")
	var got []sunk
	_, err := parseTurnMultipart(multipart.NewReader(strings.NewReader(body), boundary), collect(&got))
	if !errors.Is(err, errTruncated) || len(got) != 1 || !errors.Is(got[0].readErr, errTruncated) {
		t.Fatalf("truncated part: err %v, uploads %+v", err, got)
	}
}

func TestParseUploadMultipart(t *testing.T) {
	type put struct {
		name, data string
		f          uploadFields
	}
	var got []put
	sink := func(name string, f uploadFields, body io.Reader) error {
		b, err := io.ReadAll(body)
		got = append(got, put{name, string(b), f})
		return err
	}
	err := parseUploadMultipart(multipartReader(t,
		formPart{name: "upload_source", content: "page_capture"},
		formPart{name: "source_url", content: "https://x.example/p"},
		formPart{name: "file", filename: "C:\\logs\\app.log", content: "data"},
		formPart{name: "comment", content: "ignored"},
	), sink)
	if err != nil || len(got) != 1 || got[0].name != "C:\\logs\\app.log" || got[0].data != "data" ||
		got[0].f != (uploadFields{SourceURL: "https://x.example/p", UploadSource: "page_capture"}) {
		t.Fatalf("upload: %v %+v", err, got)
	}
	for name, tc := range map[string]struct {
		parts []formPart
		want  *Error
	}{
		"no file":         {[]formPart{{name: "source_url", content: "x"}}, errNoFilePart},
		"two files":       {[]formPart{{name: "file", filename: "a", content: "a"}, {name: "file", filename: "b", content: "b"}}, errOneFile},
		"fields too late": {[]formPart{{name: "file", filename: "a", content: "a"}, {name: "upload_source", content: "paste"}}, errFieldsTooLate},
		"agent source":    {[]formPart{{name: "upload_source", content: "agent_generated"}, {name: "file", filename: "a", content: "a"}}, nil},
	} {
		got = nil
		err := parseUploadMultipart(multipartReader(t, tc.parts...), sink)
		var ge *Error
		if !errors.As(err, &ge) || ge.Code != CodeValidation || (tc.want != nil && ge != tc.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseTurnMultipart feeds arbitrary bodies and boundaries to the
// streaming turn and upload parsers behind a body cap: they must never
// panic, must only return the documented errors, must hand the sink no more
// bytes than the body holds and never more uploads than allowed, and the
// text they keep in memory must stay within the field caps.
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
	b, bd = seed(map[string]string{"upload_source": "paste"}, map[string]string{"a.bin": "\x00\x01\x02"})
	f.Add(b, bd)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\n\x00\x01\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc"), "b")
	f.Add([]byte("--b\r\n\r\n"), "b")
	f.Add([]byte("garbage"), "")
	const maxBody = 64 << 10
	documented := func(t *testing.T, err error) {
		t.Helper()
		var ge *Error
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &ge):
			if HTTPStatus(ge.Code) >= 500 {
				t.Fatalf("a client's body caused %s", ge.Code)
			}
		case errors.As(err, &mb), errors.Is(err, evidence.ErrEmpty):
		default:
			t.Fatalf("undocumented error %T %v", err, err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" {
			boundary = "b"
		}
		newReader := func() *multipart.Reader {
			return multipart.NewReader(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), maxBody), boundary)
		}
		var sunkBytes int64
		uploads := 0
		drain := func(r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			sunkBytes += n
			if err == nil && n == 0 {
				return evidence.ErrEmpty // what the store says
			}
			return err
		}
		fields, err := parseTurnMultipart(newReader(), func(u turnUpload, _ *turnFields) error {
			uploads++
			return drain(u.Body)
		})
		if err != nil {
			documented(t, err)
		}
		if len(fields.Query) > maxTurnTextBytes || len(fields.InputType) > maxShortFormText ||
			len(fields.SourceURL) > maxShortFormText || len(fields.IntentType) > maxShortFormText {
			t.Fatalf("a field beyond its cap: %+v", fields)
		}
		if uploads > maxTurnFiles+1 || sunkBytes > int64(len(body)) {
			t.Fatalf("%d uploads, %d bytes from a %d-byte body", uploads, sunkBytes, len(body))
		}

		sunkBytes, uploads = 0, 0
		err = parseUploadMultipart(newReader(), func(_ string, f uploadFields, body io.Reader) error {
			uploads++
			if len(f.SourceURL) > maxShortFormText || (f.UploadSource != "" && !uploadSources[f.UploadSource]) {
				t.Fatalf("fields %+v", f)
			}
			return drain(body)
		})
		if err != nil {
			documented(t, err)
		}
		if uploads > 1 || sunkBytes > int64(len(body)) {
			t.Fatalf("%d uploads, %d bytes from a %d-byte body", uploads, sunkBytes, len(body))
		}
	})
}

// FuzzParseDocumentMultipart: whatever the body, a knowledge upload either
// stores one file with capped fields or fails with a documented client
// error.
func FuzzParseDocumentMultipart(f *testing.F) {
	seed := func(fields []string, file string) ([]byte, string) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		for i := 0; i+1 < len(fields); i += 2 {
			_ = w.WriteField(fields[i], fields[i+1])
		}
		if file != "" {
			fw, _ := w.CreateFormFile("file", "../../etc/passwd.md")
			_, _ = fw.Write([]byte(file))
		}
		_ = w.Close()
		return buf.Bytes(), w.Boundary()
	}
	b, bd := seed([]string{"title", "Disk full", "tags", "disk, ,linux", "scope", "global"}, "# Disk\n\nfree space\n")
	f.Add(b, bd)
	b, bd = seed([]string{"description", strings.Repeat("d", 9000)}, "x")
	f.Add(b, bd)
	b, bd = seed([]string{"title", "no file"}, "")
	f.Add(b, bd)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nlate\r\n--b--\r\n"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" {
			boundary = "b"
		}
		mr := multipart.NewReader(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), 64<<10), boundary)
		stored := 0
		err := parseDocumentMultipart(mr, func(df documentFields, p *multipart.Part) error {
			stored++
			for _, v := range []string{df.Title, df.DocumentType, df.Category, df.Description, df.SourceURL, df.Scope, df.CaseID, df.Tags} {
				if len(v) > maxDocField {
					t.Fatalf("a field of %d bytes passed the %d cap", len(v), maxDocField)
				}
			}
			_, err := io.Copy(io.Discard, p)
			return err
		})
		if stored > 1 {
			t.Fatalf("%d documents stored from one request", stored)
		}
		if err == nil && stored != 1 {
			t.Fatal("no error and no document")
		}
		if err != nil {
			var ge *Error
			var mb *http.MaxBytesError
			if errors.As(err, &ge) {
				if HTTPStatus(ge.Code) >= 500 {
					t.Fatalf("a client's body caused %s", ge.Code)
				}
			} else if !errors.As(err, &mb) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("undocumented error %T %v", err, err)
			}
		}
	})
}
