package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"strings"

	"github.com/faultmaven/faultmaven/actors/evidence"
)

// The body of POST /api/v1/cases/{case_id}/uploaded-files: one file part
// named "file" (or "files"), streamed to a sink, and two optional text
// fields, source_url and upload_source, which must come before it because
// they label the file as it is stored.

// uploadFields are the text fields of a dedicated upload.
type uploadFields struct {
	SourceURL    string
	UploadSource string
}

// uploadSources are the origins a client may claim for a file it uploads
// (agent_generated is the server's own).
var uploadSources = map[string]bool{
	evidence.SourceFileUpload: true, evidence.SourcePaste: true,
	evidence.SourcePageCapture: true, evidence.SourceScreenshot: true,
}

var (
	errNoFilePart    = validation(`the upload needs a file part named "file"`)
	errOneFile       = validation("upload one file per request")
	errFieldsTooLate = validation("send source_url and upload_source before the file part")
)

// parseUploadMultipart reads a dedicated upload, calling put once, with the
// file part's client-side name and body, as the file arrives. Errors are
// *Error (400 malformed, 422), whatever put returned, or an
// *http.MaxBytesError; an error after put succeeded means the caller must
// remove what put stored.
func parseUploadMultipart(mr *multipart.Reader, put func(name string, f uploadFields, body io.Reader) error) error {
	var f uploadFields
	seen := map[string]bool{}
	file := false
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return formError(err)
		}
		if parts >= maxFormParts {
			return validation(fmt.Sprintf("an upload has at most %d form fields", maxFormParts))
		}
		switch name := p.FormName(); name {
		case "file", "files":
			if file {
				return errOneFile
			}
			file = true
			if err := put(p.FileName(), f, partBody{p}); err != nil {
				return err
			}
		case "source_url", "upload_source":
			if file {
				return errFieldsTooLate
			}
			if seen[name] {
				if _, err := io.Copy(io.Discard, partBody{p}); err != nil {
					return formError(err)
				}
				continue // the first value wins
			}
			seen[name] = true
			v, err := readText(name, p, maxShortFormText)
			if err != nil {
				return err
			}
			v = strings.TrimSpace(v)
			if err := checkText(name, v, maxShortFormText); err != nil {
				return err
			}
			if name == "source_url" {
				f.SourceURL = v
			} else if v != "" {
				if !uploadSources[v] {
					return validation("upload_source must be file_upload, paste, page_capture or screenshot")
				}
				f.UploadSource = v
			}
		default:
			if _, err := io.Copy(io.Discard, partBody{p}); err != nil {
				return formError(err)
			}
		}
	}
	if !file {
		return errNoFilePart
	}
	return nil
}
