package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The body of POST /api/v1/cases/{case_id}/turns (contract §5.1), read as
// a stream. Text fields are small and read into memory under fixed caps;
// each file and the paste are handed to a sink as a reader over the request
// body, so an upload is never held in memory whole. The parser is a
// function of the bytes and the sink, so it can be fuzzed without a store.

// Limits of a turn body, on top of Config.MaxUploadBytes.
const (
	// maxTurnTextBytes mirrors the case service's cap on a turn's text,
	// so the gateway can say which field is too big.
	maxTurnTextBytes = 200_000
	maxTurnFiles     = 10
	maxFormParts     = 64
	maxShortFormText = 2048 // input_type, intent_type, source_url, upload_source
	maxIntentData    = 64 << 10
	// pasteLookahead is how much of a paste is held back until the rest of
	// the form is read: the paste's label (paste or page capture) and URL
	// come in fields that may follow it. A longer paste is streamed at
	// once with the labels known by then.
	pasteLookahead = 256 << 10
)

// turnFields are the text fields of a turn.
type turnFields struct {
	Query      string
	InputType  string
	SourceURL  string
	IntentType string
	IntentData map[string]any
}

// pageCapture reports whether the paste is a page capture (§5.1).
func (f *turnFields) pageCapture() bool { return f.InputType == "page_capture" }

// turnUpload is one file or paste of a turn body as it streams in. Name is
// the client's file name, unsanitized ("" for a paste).
type turnUpload struct {
	Name  string
	Paste bool
	Body  io.Reader
}

// uploadSink stores one upload; it reads u.Body (to its end, unless it
// fails) and sees the fields read so far. Its error ends the parse as is.
type uploadSink func(u turnUpload, fields *turnFields) error

// parseTurnMultipart reads a multipart turn body, giving each `files` part
// and the `pasted_content` part to put as it arrives. The paste goes to put
// after the whole form when it is at most pasteLookahead bytes (so the
// fields after it label it), else at once. An empty paste is no paste.
// Errors are *Error (400 malformed, 422), whatever put returned, or an
// *http.MaxBytesError from the body.
func parseTurnMultipart(mr *multipart.Reader, put uploadSink) (turnFields, error) {
	var f turnFields
	var paste []byte // a short paste, held back
	havePaste := false
	seen := map[string]bool{}
	files := 0
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return f, formError(err)
		}
		if parts >= maxFormParts {
			return f, validation(fmt.Sprintf("a turn has at most %d form fields", maxFormParts))
		}
		name := p.FormName()
		switch {
		case name == "files":
			if files >= maxTurnFiles {
				return f, validation(fmt.Sprintf("at most %d files per turn", maxTurnFiles))
			}
			files++
			if err := put(turnUpload{Name: p.FileName(), Body: partBody{p}}, &f); err != nil {
				return f, err
			}
		case name == "pasted_content" && !havePaste:
			havePaste = true
			head, err := io.ReadAll(io.LimitReader(partBody{p}, pasteLookahead+1))
			if err != nil {
				return f, formError(err)
			}
			if len(head) <= pasteLookahead {
				paste = head
				continue
			}
			// Too long to hold back: stream it now.
			body := io.MultiReader(bytes.NewReader(head), partBody{p})
			if err := put(turnUpload{Paste: true, Body: body}, &f); err != nil {
				return f, err
			}
		case fieldLimit(name) > 0 && !seen[name]:
			seen[name] = true // the first value of a repeated field wins
			if err := f.readField(name, p); err != nil {
				return f, err
			}
		default: // unknown or repeated fields are read past, within the body cap
			if _, err := io.Copy(io.Discard, partBody{p}); err != nil {
				return f, formError(err)
			}
		}
	}
	if len(paste) > 0 {
		if err := put(turnUpload{Paste: true, Body: bytes.NewReader(paste)}, &f); err != nil {
			return f, err
		}
	}
	return f, nil
}

// parseTurnURLEncoded reads an application/x-www-form-urlencoded turn body
// (already capped by the router at MaxBodyBytes).
func parseTurnURLEncoded(body io.Reader, put uploadSink) (turnFields, error) {
	var f turnFields
	b, err := io.ReadAll(body)
	if err != nil {
		return f, err
	}
	vals, err := url.ParseQuery(string(b))
	if err != nil {
		return f, &Error{CodeMalformedForm, "The form body is not valid URL encoding"}
	}
	for _, name := range []string{"query", "input_type", "source_url", "intent_type", "intent_data"} {
		if v, ok := vals[name]; ok && len(v) > 0 {
			if err := f.readField(name, strings.NewReader(v[0])); err != nil {
				return f, err
			}
		}
	}
	if v := vals.Get("pasted_content"); v != "" {
		if err := put(turnUpload{Paste: true, Body: strings.NewReader(v)}, &f); err != nil {
			return f, err
		}
	}
	return f, nil
}

// fieldLimit is the byte cap of a known text field; 0 for unknown names.
func fieldLimit(name string) int {
	switch name {
	case "query":
		return maxTurnTextBytes
	case "input_type", "intent_type", "source_url":
		return maxShortFormText
	case "intent_data":
		return maxIntentData
	}
	return 0
}

// readField reads one text field within its cap.
func (f *turnFields) readField(name string, r io.Reader) error {
	v, err := readText(name, r, fieldLimit(name))
	if err != nil {
		return err
	}
	switch name {
	case "query":
		f.Query = strings.TrimSpace(v)
	case "input_type", "intent_type", "source_url":
		v = strings.TrimSpace(v)
		if err := checkText(name, v, maxShortFormText); err != nil {
			return err
		}
		switch name {
		case "input_type":
			f.InputType = v
		case "intent_type":
			f.IntentType = v
		default:
			f.SourceURL = v
		}
	case "intent_data":
		v = strings.TrimSpace(v)
		if v == "" || v == "null" {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return validation("intent_data must be a JSON object")
		}
		f.IntentData = m
	}
	return nil
}

// readText reads a text field of at most limit bytes of valid UTF-8.
func readText(name string, r io.Reader, limit int) (string, error) {
	if p, ok := r.(*multipart.Part); ok {
		r = partBody{p}
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return "", formError(err)
	}
	if len(data) > limit {
		return "", validation(fmt.Sprintf("%s is too long (at most %d bytes)", name, limit))
	}
	if !utf8.Valid(data) {
		return "", validation(name + " must be valid UTF-8")
	}
	return string(data), nil
}

// errTruncated is a part that ended without its closing boundary.
var errTruncated = &Error{CodeMalformedForm, "The multipart body ended in the middle of a part"}

// partBody reads a part, reporting a truncated part as errTruncated
// rather than io.ErrUnexpectedEOF, which the evidence store (like
// io.ReadFull) takes for the end of a short file.
type partBody struct{ p *multipart.Part }

func (b partBody) Read(buf []byte) (int, error) {
	n, err := b.p.Read(buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errTruncated
	}
	return n, err
}

// formError classifies a failure of the multipart reader: the body cap
// passes through (413), anything else is a malformed body.
func formError(err error) error {
	var tooBig *http.MaxBytesError
	var ge *Error
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.As(err, &ge):
		return err
	}
	return &Error{CodeMalformedForm, "The multipart body could not be read"}
}
