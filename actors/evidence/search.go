package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxPatternLen is the longest search pattern accepted, in bytes.
const MaxPatternLen = 1000

// maxMatchText bounds the text of one match: a window around the match in
// a longer line.
const maxMatchText = 512

// checkEvery is how many lines are searched between deadline checks.
const checkEvery = 256

// SearchQuery asks for lines matching Pattern in a case's files.
type SearchQuery struct {
	Pattern string `json:"pattern"`
	Regex   bool   `json:"regex"`             // Go RE2 syntax; otherwise a case-insensitive substring
	FileID  string `json:"file_id,omitempty"` // only this file
	Limit   int    `json:"limit,omitempty"`   // ≤ 0 or over MaxMatches means MaxMatches
}

// Match is one matching line.
type Match struct {
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
	Line     int64  `json:"line"` // 1-based
	Text     string `json:"text"` // the line, or a window around the match in a long line
}

// SearchResult holds the matches found, in file then line order.
type SearchResult struct {
	Matches       []Match `json:"matches"`
	Truncated     bool    `json:"truncated"` // more lines matched than were returned
	TimedOut      bool    `json:"timed_out"` // SearchTimeout expired before every file was searched
	FilesSearched int     `json:"files_searched"`
}

// matcher finds a match in one line: its start and end, or -1.
type matcher func(line []byte) (int, int)

// Search looks for a substring (case-insensitive) or a regular expression
// in the case's text files, or in one of them, line by line. Lines longer
// than 64 KiB are searched in their first 64 KiB. It stops after Limit
// matches (Truncated when there were more) or when SearchTimeout expires
// (TimedOut, with the matches found so far). Images and binary files are
// skipped, as are repeated uploads of the same content. A bad pattern is
// ErrInvalidInput; an unknown FileID is ErrNotFound.
func (s *Store) Search(ctx context.Context, caseID string, q SearchQuery) (SearchResult, error) {
	res := SearchResult{Matches: []Match{}}
	match, err := compileQuery(q)
	if err != nil {
		return res, err
	}
	limit := q.Limit
	if limit <= 0 || limit > s.cfg.MaxMatches {
		limit = s.cfg.MaxMatches
	}
	var files []File
	if q.FileID != "" {
		f, err := s.get(caseID, q.FileID)
		if err != nil {
			return res, err
		}
		if !f.Kind.textual() {
			return res, fmt.Errorf("%w: %s is %s content and cannot be searched as text", ErrInvalidInput, f.Filename, f.Kind)
		}
		files = []File{f}
	} else if files, err = s.scan(ctx, caseID, false); err != nil {
		return res, err
	}
	files = distinct(files)

	sctx, cancel := context.WithTimeout(ctx, s.cfg.SearchTimeout)
	defer cancel()
	for _, f := range files {
		if !f.Kind.textual() {
			continue
		}
		if sctx.Err() != nil {
			res.TimedOut = true
			break
		}
		done, err := s.searchFile(sctx, f, match, limit, &res)
		if err != nil {
			if isDeadline(sctx, err) {
				res.TimedOut = true
				break
			}
			return res, err
		}
		res.FilesSearched++
		if done {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err // the caller gave up: not a timeout of ours
	}
	return res, nil
}

// isDeadline reports an error caused by the search deadline.
func isDeadline(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled))
}

// searchFile appends f's matches to res; done means the limit was passed.
func (s *Store) searchFile(ctx context.Context, f File, match matcher, limit int, res *SearchResult) (done bool, err error) {
	rc, err := s.openBlob(f)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	lr := newLineReader(&ctxReader{ctx: ctx, r: rc}, maxLineBytes)
	for n := int64(1); ; n++ {
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		line, _, err := lr.next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, readErr(err, f)
		}
		start, end := match(line)
		if start < 0 {
			continue
		}
		if len(res.Matches) == limit {
			res.Truncated = true
			return true, nil
		}
		res.Matches = append(res.Matches, Match{FileID: f.FileID, Filename: f.Filename, Line: n, Text: window(line, start, end)})
	}
}

// compileQuery validates the pattern and returns its matcher.
func compileQuery(q SearchQuery) (matcher, error) {
	switch {
	case q.Pattern == "":
		return nil, fmt.Errorf("%w: empty search pattern", ErrInvalidInput)
	case len(q.Pattern) > MaxPatternLen:
		return nil, fmt.Errorf("%w: search pattern is %d bytes, the limit is %d", ErrInvalidInput, len(q.Pattern), MaxPatternLen)
	case !utf8.ValidString(q.Pattern):
		return nil, fmt.Errorf("%w: search pattern is not valid UTF-8", ErrInvalidInput)
	}
	if q.Regex {
		re, err := regexp.Compile(q.Pattern)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
		}
		return func(line []byte) (int, int) {
			loc := re.FindIndex(line)
			if loc == nil {
				return -1, -1
			}
			return loc[0], loc[1]
		}, nil
	}
	if !isASCII(q.Pattern) {
		// Unicode case folding: RE2 does it right, still in linear time.
		re := regexp.MustCompile("(?i)" + regexp.QuoteMeta(q.Pattern))
		return func(line []byte) (int, int) {
			loc := re.FindIndex(line)
			if loc == nil {
				return -1, -1
			}
			return loc[0], loc[1]
		}, nil
	}
	needle := []byte(strings.ToLower(q.Pattern))
	var lower []byte
	return func(line []byte) (int, int) {
		lower = asciiLower(lower[:0], line)
		i := bytes.Index(lower, needle)
		if i < 0 {
			return -1, -1
		}
		return i, i + len(needle)
	}, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiLower appends b with ASCII letters lowered to dst; byte offsets are
// unchanged.
func asciiLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// window returns the line, or for a long line up to maxMatchText bytes
// around the match, as valid UTF-8 with "…" where text was left out.
func window(line []byte, start, end int) string {
	if len(line) <= maxMatchText {
		return strings.ToValidUTF8(string(line), "\uFFFD")
	}
	pad := max(0, (maxMatchText-(end-start))/2)
	lo := max(0, start-pad)
	hi := min(len(line), max(end, lo+maxMatchText))
	hi = min(hi, lo+maxMatchText)
	for lo > 0 && !utf8.RuneStart(line[lo]) {
		lo++
	}
	for hi < len(line) && !utf8.RuneStart(line[hi]) {
		hi--
	}
	var b strings.Builder
	if lo > 0 {
		b.WriteString("…")
	}
	b.WriteString(strings.ToValidUTF8(string(line[lo:hi]), "\uFFFD"))
	if hi < len(line) {
		b.WriteString("…")
	}
	return b.String()
}
