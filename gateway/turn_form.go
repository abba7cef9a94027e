package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The body of POST /api/v1/cases/{case_id}/turns (contract §5.1), parsed
// by one pure function of the bytes so it can be fuzzed. Until the
// evidence module stores uploads, a text file or a paste travels inside
// the turn's text as a fenced block; binary files are refused.

// Limits of a turn body, on top of Config.MaxUploadBytes.
const (
	// maxTurnTextBytes mirrors the case service's cap on a turn's text,
	// so the gateway can say which part of the upload is too big.
	maxTurnTextBytes = 200_000
	maxTurnFileBytes = 1 << 20 // one text file or paste
	maxTurnFiles     = 10
	maxFormParts     = 64
	maxShortFormText = 2048 // input_type, intent_type, source_url
	maxIntentData    = 64 << 10
	maxFileNameBytes = 255
)

var errFileNotSupported = validation("only text files up to 1 MiB are supported in turns for now")

// turnForm is a decoded turn body.
type turnForm struct {
	Query         string
	PastedContent string
	InputType     string
	SourceURL     string
	IntentType    string
	IntentData    map[string]any
	Files         []turnFile
}

// turnFile is an uploaded text file; Name is already sanitized.
type turnFile struct {
	Name string
	Data []byte
}

// parseTurnForm reads a multipart/form-data or
// application/x-www-form-urlencoded turn body of at most maxBytes. Memory
// stays within maxBytes plus the fixed per-field caps: nothing is spooled
// to disk. Errors are *Error (400 malformed, 413, 415, 422) or an
// *http.MaxBytesError from body.
func parseTurnForm(contentType string, body io.Reader, maxBytes int64) (turnForm, error) {
	var f turnForm
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return f, &Error{CodeUnsupportedMedia, "Send the turn as multipart/form-data"}
	}
	capped := &capReader{r: body, left: maxBytes, limit: maxBytes}
	switch mt {
	case "multipart/form-data":
		boundary := params["boundary"]
		if boundary == "" {
			return f, &Error{CodeMalformedForm, "multipart/form-data needs a boundary"}
		}
		return f, f.readMultipart(multipart.NewReader(capped, boundary))
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(capped)
		if err != nil {
			return f, err
		}
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return f, &Error{CodeMalformedForm, "The form body is not valid URL encoding"}
		}
		for _, name := range []string{"query", "pasted_content", "input_type", "source_url", "intent_type", "intent_data"} {
			if v, ok := vals[name]; ok && len(v) > 0 {
				if err := f.setField(name, []byte(v[0])); err != nil {
					return f, err
				}
			}
		}
		return f, nil
	default:
		return f, &Error{CodeUnsupportedMedia, "Send the turn as multipart/form-data"}
	}
}

func (f *turnForm) readMultipart(mr *multipart.Reader) error {
	seen := map[string]bool{}
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return formError(err)
		}
		if parts >= maxFormParts {
			return validation(fmt.Sprintf("a turn has at most %d form fields", maxFormParts))
		}
		name := p.FormName()
		switch {
		case name == "files":
			if len(f.Files) >= maxTurnFiles {
				return validation(fmt.Sprintf("at most %d files per turn", maxTurnFiles))
			}
			data, over, err := readLimited(p, maxTurnFileBytes)
			if err != nil {
				return formError(err)
			}
			if over || !isText(data) {
				return errFileNotSupported
			}
			f.Files = append(f.Files, turnFile{Name: sanitizeFileName(p.FileName()), Data: data})
		case fieldLimit(name) > 0 && !seen[name]:
			seen[name] = true // the first value of a repeated field wins
			data, over, err := readLimited(p, fieldLimit(name))
			if err != nil {
				return formError(err)
			}
			if over {
				return validation(fmt.Sprintf("%s is too long (at most %d bytes)", name, fieldLimit(name)))
			}
			if err := f.setField(name, data); err != nil {
				return err
			}
		default: // unknown or repeated fields are read past, within the body cap
			if _, err := io.Copy(io.Discard, p); err != nil {
				return formError(err)
			}
		}
	}
}

// fieldLimit is the byte cap of a known text field; 0 for unknown names.
func fieldLimit(name string) int {
	switch name {
	case "query":
		return maxTurnTextBytes
	case "pasted_content":
		return maxTurnFileBytes
	case "input_type", "intent_type", "source_url":
		return maxShortFormText
	case "intent_data":
		return maxIntentData
	}
	return 0
}

func (f *turnForm) setField(name string, v []byte) error {
	if len(v) > fieldLimit(name) {
		return validation(fmt.Sprintf("%s is too long (at most %d bytes)", name, fieldLimit(name)))
	}
	if !utf8.Valid(v) {
		if name == "pasted_content" {
			return errFileNotSupported
		}
		return validation(name + " must be valid UTF-8")
	}
	s := string(v)
	switch name {
	case "query":
		f.Query = strings.TrimSpace(s)
	case "pasted_content":
		f.PastedContent = s
	case "input_type", "intent_type", "source_url":
		s = strings.TrimSpace(s)
		if err := checkText(name, s, maxShortFormText); err != nil {
			return err
		}
		switch name {
		case "input_type":
			f.InputType = s
		case "intent_type":
			f.IntentType = s
		default:
			f.SourceURL = s
		}
	case "intent_data":
		s = strings.TrimSpace(s)
		if s == "" || s == "null" {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return validation("intent_data must be a JSON object")
		}
		f.IntentData = m
	}
	return nil
}

// readLimited reads at most limit bytes; over reports that there was more.
func readLimited(r io.Reader, limit int) (data []byte, over bool, err error) {
	data, err = io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, false, err
	}
	if len(data) > limit {
		return nil, true, nil
	}
	return data, false, nil
}

// formError classifies a failure of the multipart reader: the body cap
// passes through (413), anything else is a malformed body.
func formError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return &Error{CodeMalformedForm, "The multipart body could not be read"}
}

// capReader fails with *http.MaxBytesError once more than left bytes have
// been asked for, like http.MaxBytesReader but without a ResponseWriter.
type capReader struct {
	r     io.Reader
	left  int64
	limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells a body that ends exactly at the cap apart
		// from one that is over it.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, &http.MaxBytesError{Limit: c.limit}
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// isText accepts valid UTF-8 without NUL bytes: what a log, config or
// command output looks like, and what an image or archive does not.
func isText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// sanitizeFileName keeps the base name of a client's file name, without
// control or bidirectional-override characters, at most 255 bytes. It is
// only ever shown and sent to the LLM, never used as a path.
func sanitizeFileName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	if len(name) > maxFileNameBytes {
		cut := maxFileNameBytes
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	return name
}

func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// Source types as the extension reads them (contract §5.2, §8 #14).
const (
	sourceFile        = "file_upload"
	sourcePaste       = "text_paste"
	sourcePageCapture = "page_capture"
)

// attachment is one file or paste of a turn before it has ids.
type attachment struct {
	name, source, upload, heading string
	data                          []byte
}

// attachments lists the paste (if any) and the files, in the order they
// appear in the turn text. turn names the pastes.
func (f turnForm) attachments(turn int) []attachment {
	var out []attachment
	if f.PastedContent != "" {
		a := attachment{source: sourcePaste, upload: "paste", heading: "Pasted content", data: []byte(f.PastedContent)}
		a.name = "pasted-content-" + strconv.Itoa(turn) + ".txt"
		if f.InputType == "page_capture" {
			a.source, a.upload, a.heading = sourcePageCapture, "page_capture", "Page capture"
			a.name = "page-capture-" + strconv.Itoa(turn) + ".txt"
			if f.SourceURL != "" {
				a.heading += " of " + f.SourceURL
			}
		}
		out = append(out, a)
	}
	for _, file := range f.Files {
		out = append(out, attachment{name: file.Name, source: sourceFile, upload: "file_upload",
			heading: "File " + file.Name, data: file.Data})
	}
	return out
}

// turnText is the query followed by each attachment as a fenced block.
// The fence is longer than any run of backticks inside, so content cannot
// close it early.
func (f turnForm) turnText() (string, error) {
	var b strings.Builder
	b.WriteString(f.Query)
	for _, a := range f.attachments(0) {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		fence := strings.Repeat("`", max(3, longestRun(a.data, '`')+1))
		b.WriteString(a.heading + ":\n" + fence + "\n")
		b.Write(a.data)
		if len(a.data) > 0 && a.data[len(a.data)-1] != '\n' {
			b.WriteByte('\n')
		}
		b.WriteString(fence)
		if b.Len() > maxTurnTextBytes {
			return "", validation(fmt.Sprintf("the query and its text attachments must together be at most %d bytes for now", maxTurnTextBytes))
		}
	}
	return b.String(), nil
}

func longestRun(b []byte, c byte) int {
	best, run := 0, 0
	for _, x := range b {
		if x == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// attachmentResult is one entry of TurnResponse.attachments_processed.
type attachmentResult struct {
	Filename         string    `json:"filename"`
	FileSize         int       `json:"file_size"`
	SourceType       string    `json:"source_type"`
	EvidenceID       string    `json:"evidence_id"`
	FileID           string    `json:"file_id"`
	ProcessingStatus string    `json:"processing_status"`
	UploadSource     string    `json:"upload_source"`
	UploadedAt       time.Time `json:"uploaded_at"`
}

// attachmentResults describes the turn's attachments, never nil. Ids are
// derived from the case, turn, position and content, so a replay of the
// same request describes them identically.
func (f turnForm) attachmentResults(caseID string, turn int, at time.Time) []attachmentResult {
	atts := f.attachments(turn)
	out := make([]attachmentResult, 0, len(atts))
	for i, a := range atts {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00", caseID, turn, i, a.name)
		h.Write(a.data)
		id := hex.EncodeToString(h.Sum(nil)[:12])
		out = append(out, attachmentResult{
			Filename: a.name, FileSize: len(a.data), SourceType: a.source,
			EvidenceID: "ev_" + id, FileID: "file_" + id, ProcessingStatus: "completed",
			UploadSource: a.upload, UploadedAt: at.UTC(),
		})
	}
	return out
}
