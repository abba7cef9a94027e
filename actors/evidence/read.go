package evidence

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// maxLineBytes bounds the part of one line that is kept while streaming a
// file; the rest of a longer line is skipped.
const maxLineBytes = 64 << 10

// ReadResult is a bounded slice of a file's text.
type ReadResult struct {
	Text       string `json:"text"`
	FromLine   int    `json:"from_line"` // first line in Text (1-based; 0 for binary dumps)
	ToLine     int    `json:"to_line"`   // last line in Text, possibly cut
	Truncated  bool   `json:"truncated"` // less than asked for was returned (byte cap, long line)
	TotalLines int64  `json:"total_lines"`
}

// Read returns lines fromLine..toLine (1-based, inclusive) of a text file.
// The range is clamped to the file (toLine ≤ 0 means "to the end"), and
// the text never exceeds MaxReadBytes: Truncated says when it stopped
// early. Images and binary files are ErrInvalidInput (see ReadBytes).
func (s *Store) Read(ctx context.Context, caseID, fileID string, fromLine, toLine int) (ReadResult, error) {
	f, err := s.get(caseID, fileID)
	if err != nil {
		return ReadResult{}, err
	}
	if !f.Kind.textual() {
		return ReadResult{}, fmt.Errorf("%w: %s is %s content and has no lines; read it with ReadBytes (hex dump)", ErrInvalidInput, f.Filename, f.Kind)
	}
	total := int(min(f.Lines, int64(^uint(0)>>1)))
	from := max(1, min(fromLine, total))
	to := toLine
	if to <= 0 || to > total {
		to = total
	}
	to = max(to, from)
	res := ReadResult{FromLine: from, TotalLines: f.Lines}

	rc, err := s.openBlob(f)
	if err != nil {
		return ReadResult{}, err
	}
	defer rc.Close()
	lr := newLineReader(&ctxReader{ctx: ctx, r: rc}, s.cfg.MaxReadBytes)
	budget := s.cfg.MaxReadBytes
	var out strings.Builder
	for n := 1; n <= to; n++ {
		if n < from {
			if err := lr.skip(); err != nil {
				return ReadResult{}, readErr(err, f)
			}
			continue
		}
		line, cut, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ReadResult{}, readErr(err, f)
		}
		text := strings.ToValidUTF8(string(line), "\uFFFD")
		sep := 0
		if n > from {
			sep = 1
		}
		if out.Len()+sep+len(text) > budget {
			res.Truncated = true
			if n > from {
				break // stop before a line that does not fit
			}
			text = cutRunes(text, budget) // a first line longer than the cap
		}
		if sep == 1 {
			out.WriteByte('\n')
		}
		out.WriteString(text)
		res.ToLine = n
		if cut {
			res.Truncated = true
		}
		if res.Truncated {
			break
		}
	}
	res.Text = out.String()
	return res, nil
}

// ReadBytes returns up to length bytes (at most MaxReadBytes; length ≤ 0
// means as much as allowed) from offset. Text comes back as text (invalid
// UTF-8 replaced) with the lines it spans; images and binary files as a hex
// dump whose size stays within MaxReadBytes.
func (s *Store) ReadBytes(ctx context.Context, caseID, fileID string, offset, length int64) (ReadResult, error) {
	f, err := s.get(caseID, fileID)
	if err != nil {
		return ReadResult{}, err
	}
	if offset < 0 {
		return ReadResult{}, fmt.Errorf("%w: negative offset %d", ErrInvalidInput, offset)
	}
	res := ReadResult{TotalLines: f.Lines}
	if offset >= f.SizeBytes {
		return res, nil
	}
	want := f.SizeBytes - offset
	if length > 0 && length < want {
		want = length
	}
	limit := int64(s.cfg.MaxReadBytes)
	if !f.Kind.textual() {
		limit = int64(s.cfg.MaxReadBytes/hexLineLen) * 16
	}
	n := min(want, limit)
	res.Truncated = n < want

	rc, err := s.openBlob(f)
	if err != nil {
		return ReadResult{}, err
	}
	defer rc.Close()
	r := &ctxReader{ctx: ctx, r: rc}
	if !f.Kind.textual() {
		buf := make([]byte, n)
		if _, err := rc.Seek(offset, io.SeekStart); err != nil {
			return ReadResult{}, readErr(err, f)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			return ReadResult{}, readErr(err, f)
		}
		res.Text = hexDump(buf, offset)
		return res, nil
	}
	// Count the lines before offset while skipping to it.
	before, err := countNewlines(io.LimitReader(r, offset))
	if err != nil {
		return ReadResult{}, readErr(err, f)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return ReadResult{}, readErr(err, f)
	}
	res.FromLine = int(before) + 1
	res.ToLine = res.FromLine + bytes.Count(bytes.TrimSuffix(buf, []byte{'\n'}), []byte{'\n'})
	text := strings.ToValidUTF8(string(buf), "\uFFFD")
	if len(text) > s.cfg.MaxReadBytes { // replacement characters are wider than the bytes they replace
		text = cutRunes(text, s.cfg.MaxReadBytes)
		res.Truncated = true
	}
	res.Text = text
	return res, nil
}

// openBlob opens a file's content. A missing blob for an existing record is
// an internal inconsistency, not a user's "not found".
func (s *Store) openBlob(f File) (*os.File, error) {
	rc, err := s.blobs.Open(f.SHA256)
	if err != nil {
		return nil, fmt.Errorf("evidence: open content of %s: %w", f.FileID, err)
	}
	return rc, nil
}

func readErr(err error, f File) error {
	return fmt.Errorf("evidence: read %s: %w", f.FileID, err)
}

// cutRunes shortens s to at most n bytes on a rune boundary.
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func countNewlines(r io.Reader) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(bytes.Count(buf[:m], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// hexLineLen is the size of one hexDump line.
const hexLineLen = 79

// hexDump formats b as offset, hex and ASCII columns, 16 bytes a line.
func hexDump(b []byte, base int64) string {
	const hexdig = "0123456789abcdef"
	var out strings.Builder
	out.Grow((len(b) + 15) / 16 * hexLineLen)
	for i := 0; i < len(b); i += 16 {
		row := b[i:min(i+16, len(b))]
		fmt.Fprintf(&out, "%08x  ", base+int64(i))
		for j := 0; j < 16; j++ {
			if j == 8 {
				out.WriteByte(' ')
			}
			if j < len(row) {
				out.WriteByte(hexdig[row[j]>>4])
				out.WriteByte(hexdig[row[j]&0xf])
				out.WriteByte(' ')
			} else {
				out.WriteString("   ")
			}
		}
		out.WriteString(" |")
		for _, c := range row {
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			out.WriteByte(c)
		}
		out.WriteString("|\n")
	}
	return out.String()
}

// lineReader streams lines, keeping at most max bytes of each.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its line ending, cut to max bytes
// (cut reports that), or io.EOF after the last line. The slice is valid
// until the next call.
func (lr *lineReader) next() (line []byte, cut bool, err error) {
	lr.buf = lr.buf[:0]
	seen := 0 // bytes of the line, line ending included
	for {
		chunk, err := lr.br.ReadSlice('\n')
		seen += len(chunk)
		if room := lr.max - len(lr.buf); room > 0 {
			lr.buf = append(lr.buf, chunk[:min(len(chunk), room)]...)
		}
		switch {
		case err == nil || (errors.Is(err, io.EOF) && seen > 0):
			eol := 0
			if err == nil {
				eol = 1
				if len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' {
					eol = 2
				}
			}
			return trimEOL(lr.buf), seen-len(lr.buf) > eol, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, false, io.EOF
		default:
			return nil, false, err
		}
	}
}

// skip discards the next line.
func (lr *lineReader) skip() error {
	for {
		_, err := lr.br.ReadSlice('\n')
		switch {
		case err == nil:
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}
