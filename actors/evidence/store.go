package evidence

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/faultmaven/faultmaven/persistence"
)

// Sentinel errors. Callers check them with errors.Is; the messages are fit
// to show a user.
var (
	ErrNotFound     = errors.New("evidence: file not found")
	ErrTooLarge     = errors.New("evidence: file too large")
	ErrEmpty        = errors.New("evidence: the file is empty (0 bytes); nothing was stored")
	ErrInvalidInput = errors.New("evidence: invalid input")
)

// Upload sources (File.UploadSource).
const (
	SourceFileUpload     = "file_upload"
	SourcePaste          = "paste"
	SourcePageCapture    = "page_capture"
	SourceScreenshot     = "screenshot"
	SourceAgentGenerated = "agent_generated"
)

// Analysis states (File.AnalysisStatus).
const (
	AnalysisCompleted = "completed"
	AnalysisFailed    = "failed"
	AnalysisSkipped   = "skipped"
)

// Config configures a Store. Zero fields take the defaults.
type Config struct {
	// MaxUpload is the largest file accepted, in bytes (default 50 MiB).
	MaxUpload int64
	// DigestBudget is the size of a file's LLM digest in characters (8000).
	DigestBudget int
	// SearchTimeout bounds one Search call (2s).
	SearchTimeout time.Duration
	// MaxMatches caps the matches one Search returns (200).
	MaxMatches int
	// MaxReadBytes caps the text one Read or ReadBytes returns (64 KiB).
	MaxReadBytes int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives errors that cannot be returned (a blob that could not
	// be removed, a panic in log analysis). Nil means no logging.
	Logger *zap.Logger
}

// Defaults.
const (
	DefaultMaxUpload     = 50 << 20
	DefaultDigestBudget  = 8000
	DefaultSearchTimeout = 2 * time.Second
	DefaultMaxMatches    = 200
	DefaultMaxReadBytes  = 64 << 10
)

// EnsureDefaults fills in zero fields.
func (c *Config) EnsureDefaults() {
	if c.MaxUpload == 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.DigestBudget == 0 {
		c.DigestBudget = DefaultDigestBudget
	}
	if c.SearchTimeout == 0 {
		c.SearchTimeout = DefaultSearchTimeout
	}
	if c.MaxMatches == 0 {
		c.MaxMatches = DefaultMaxMatches
	}
	if c.MaxReadBytes == 0 {
		c.MaxReadBytes = DefaultMaxReadBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Validate reports the first setting that cannot work, naming it.
func (c *Config) Validate() error {
	switch {
	case c.MaxUpload < 0:
		return fmt.Errorf("evidence: MaxUpload must be positive, got %d", c.MaxUpload)
	case c.DigestBudget < 200:
		return fmt.Errorf("evidence: DigestBudget must be at least 200 characters, got %d", c.DigestBudget)
	case c.SearchTimeout < 0:
		return fmt.Errorf("evidence: SearchTimeout must be positive, got %s", c.SearchTimeout)
	case c.MaxMatches < 0:
		return fmt.Errorf("evidence: MaxMatches must be positive, got %d", c.MaxMatches)
	case c.MaxReadBytes < 1024:
		return fmt.Errorf("evidence: MaxReadBytes must be at least 1024, got %d", c.MaxReadBytes)
	}
	return nil
}

// File is one uploaded piece of evidence. JSON names follow the browser
// extension's uploaded-files schema where it has them.
type File struct {
	FileID         string     `json:"file_id"`
	CaseID         string     `json:"case_id"`
	Filename       string     `json:"filename"` // sanitized, display only
	SizeBytes      int64      `json:"size_bytes"`
	SHA256         string     `json:"sha256"`
	ContentType    string     `json:"content_type"`
	Kind           Kind       `json:"source_type"`
	UploadSource   string     `json:"upload_source"`
	SourceURL      string     `json:"source_url,omitempty"`
	UploadedAt     time.Time  `json:"uploaded_at"`
	UploadedAtTurn int        `json:"uploaded_at_turn"`
	DuplicateOf    string     `json:"duplicate_of,omitempty"`   // the case's first file with the same content
	DuplicateTurn  int        `json:"duplicate_turn,omitempty"` // the turn that file was attached to
	Summary        string     `json:"summary"`
	AnalysisStatus string     `json:"analysis_status"`
	Digest         string     `json:"-"` // the LLM digest (markdown); filled by Digests only
	Lines          int64      `json:"lines"`
	FirstTS        *time.Time `json:"first_ts,omitempty"`
	LastTS         *time.Time `json:"last_ts,omitempty"`
}

// Upload is one file to store. Body is read once, as a stream.
type Upload struct {
	CaseID       string
	Filename     string // as the user named it; sanitized before storing
	UploadSource string // one of the Source… constants; "" means file_upload
	SourceURL    string // page captures: the tab's URL (display only)
	Turn         int    // the turn the file was attached to
	Body         io.Reader
}

// Store keeps a case's evidence files: records in the "evid" keyspace,
// contents in the shared content-addressed blob store.
type Store struct {
	ks      *persistence.Keyspace
	blobs   *persistence.BlobStore
	cfg     Config
	log     *zap.Logger
	entropy *ulid.LockedMonotonicReader

	// mu serialises writes of records and reference counts with the
	// removal of blobs. Uploads stream and analyse without it.
	mu sync.Mutex
	// inflight counts uploads between writing their blob and committing its
	// reference: a blob whose count drops to 0 meanwhile may be the one such
	// an upload has just written, so it is only doomed, and removed once no
	// upload is in flight (if still unreferenced).
	inflight int
	doomed   map[string]bool
}

// New returns a Store over the "evid" keyspace and the node's blob store.
func New(ks *persistence.Keyspace, blobs *persistence.BlobStore, cfg Config) (*Store, error) {
	if ks == nil || ks.Name() != persistence.SpaceEvid {
		return nil, errors.New(`evidence: New needs the "evid" keyspace`)
	}
	if blobs == nil {
		return nil, errors.New("evidence: New needs a blob store (persistence opened without NoBlobs)")
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{
		ks:      ks,
		blobs:   blobs,
		cfg:     cfg,
		log:     cfg.Logger,
		entropy: &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)},
		doomed:  map[string]bool{},
	}, nil
}

// Keys, relative to the keyspace.
func fileKey(caseID, fileID string) []byte { return []byte("f/" + caseID + "/" + fileID) }
func filePrefix(caseID string) []byte      { return []byte("f/" + caseID + "/") }
func analysisKey(caseID, id string) []byte { return []byte("a/" + caseID + "/" + id) }
func analysisPrefix(caseID string) []byte  { return []byte("a/" + caseID + "/") }
func hashKey(caseID, digest string) []byte { return []byte("h/" + caseID + "/" + digest) }
func hashPrefix(caseID string) []byte      { return []byte("h/" + caseID + "/") }
func refKey(digest string) []byte          { return []byte("r/" + digest) }

// analysis is what a file's analysis left beside its record: the LLM
// digest and its timeline events (kept out of the record so List stays
// small).
type analysis struct {
	Digest string  `json:"digest,omitempty"`
	Events []event `json:"events,omitempty"`
}

// validCaseID accepts the ids the case module issues ("case_<ulid>") and
// anything else made of letters, digits, '_' and '-': a '/' would let one
// case's key prefix cover another's.
func validCaseID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validFileID accepts "ev_" + a lowercase ULID.
func validFileID(id string) bool {
	if len(id) != 3+ulid.EncodedSize || !strings.HasPrefix(id, "ev_") {
		return false
	}
	for i := 3; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func (s *Store) newFileID(now time.Time) (string, error) {
	id, err := ulid.New(ulid.Timestamp(now), s.entropy)
	if err != nil {
		return "", fmt.Errorf("evidence: new file id: %w", err)
	}
	return "ev_" + strings.ToLower(id.String()), nil
}

// Put stores one upload: it streams the body into the blob store (never
// holding it in memory), sniffs its kind from the first 8 KiB, analyses it
// (or reuses the analysis of the same content already in the case) and
// writes the record durably. Over MaxUpload it returns ErrTooLarge, for an
// empty body ErrEmpty; in both cases nothing is stored.
func (s *Store) Put(ctx context.Context, u Upload) (File, error) {
	if err := s.checkUpload(&u); err != nil {
		return File{}, err
	}
	s.beginUpload()
	var unreferenced string // a blob this upload wrote but did not commit
	defer func() { s.endUpload(unreferenced) }()

	up, err := s.stream(ctx, u.Body)
	if err != nil {
		return File{}, err
	}
	unreferenced = up.info.Digest

	name := SanitizeFilename(u.Filename)
	sn := sniff(up.prefix, up.complete, name, s.cfg.Now())
	f := File{
		CaseID:         u.CaseID,
		Filename:       name,
		SizeBytes:      up.info.Size,
		SHA256:         up.info.Digest,
		ContentType:    sn.contentType,
		Kind:           sn.kind,
		UploadSource:   u.UploadSource,
		SourceURL:      u.SourceURL,
		UploadedAtTurn: u.Turn,
	}
	if sn.kind.textual() {
		f.Lines = up.lines
	}

	// Content already in the case is not analysed again.
	var an analysis
	orig, origAn, dup, err := s.firstCopy(u.CaseID, f.SHA256)
	if err != nil {
		return File{}, err
	}
	if dup {
		f.reuse(orig)
		an = origAn
	} else if an, err = s.analyze(ctx, &f, sn); err != nil {
		return File{}, err
	}
	if up.utf16 && !dup {
		f.Summary += " (converted from UTF-16)"
	}
	if err := s.commit(&f, an); err != nil {
		return File{}, err
	}
	unreferenced = ""
	return f, nil
}

// streamed is an upload written to the blob store.
type streamed struct {
	info     persistence.BlobInfo
	prefix   []byte // the first sniffLen bytes
	complete bool   // prefix is the whole body
	lines    int64
	utf16    bool // the upload was UTF-16 and is stored as UTF-8
}

// stream reads the sniffing prefix, then streams prefix and rest into the
// blob store, counting lines on the way. A body that starts with a UTF-16
// byte order mark (Windows PowerShell's redirections write such logs) is
// stored as UTF-8, so that it is analysed, searched and read as text like
// any other.
func (s *Store) stream(ctx context.Context, r io.Reader) (streamed, error) {
	var body io.Reader = &ctxReader{ctx: ctx, r: r}
	br := bufio.NewReader(body)
	bom, _ := br.Peek(2)
	utf16 := len(bom) == 2 && (bom[0] == 0xFF && bom[1] == 0xFE || bom[0] == 0xFE && bom[1] == 0xFF)
	body = br
	if utf16 {
		body = transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder())
	}
	prefix := make([]byte, sniffLen)
	n, err := io.ReadFull(body, prefix)
	complete := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	if err != nil && !complete {
		return streamed{}, fmt.Errorf("evidence: read upload: %w", err)
	}
	if n == 0 {
		return streamed{}, ErrEmpty
	}
	prefix = prefix[:n]
	counter := &lineCounter{r: io.MultiReader(bytes.NewReader(prefix), body)}
	info, err := s.blobs.Put(counter, s.cfg.MaxUpload)
	if errors.Is(err, persistence.ErrTooLarge) {
		return streamed{}, s.tooLarge()
	}
	if err != nil {
		return streamed{}, fmt.Errorf("evidence: store upload: %w", err)
	}
	return streamed{info: info, prefix: prefix, complete: complete, lines: counter.lines(), utf16: utf16}, nil
}

// commit writes f (given its id and time here) and its analysis with the
// blob's reference in one synced batch.
func (s *Store) commit(f *File, an analysis) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Look again: a concurrent upload of the same content may have
	// committed first, or the copy found before may have been deleted (its
	// analysis, of the same content, is still right).
	orig, origAn, dup, err := s.firstCopy(f.CaseID, f.SHA256)
	if err != nil {
		return err
	}
	if dup {
		f.reuse(orig)
		an = origAn
	} else {
		f.DuplicateOf, f.DuplicateTurn = "", 0
	}
	now := s.cfg.Now().UTC()
	if f.FileID, err = s.newFileID(now); err != nil {
		return err
	}
	f.UploadedAt = now
	refs, err := s.refCount(f.SHA256)
	if err != nil {
		return err
	}
	rec, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("evidence: encode file: %w", err)
	}
	anRec, err := json.Marshal(an)
	if err != nil {
		return fmt.Errorf("evidence: encode analysis: %w", err)
	}
	b := s.ks.NewBatch()
	defer b.Close()
	err = errors.Join(
		b.Set(fileKey(f.CaseID, f.FileID), rec),
		b.Set(analysisKey(f.CaseID, f.FileID), anRec),
		b.Set(refKey(f.SHA256), []byte(strconv.FormatInt(refs+1, 10))),
	)
	if err == nil && !dup {
		err = b.Set(hashKey(f.CaseID, f.SHA256), []byte(f.FileID))
	}
	if err != nil {
		return fmt.Errorf("evidence: batch: %w", err)
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("evidence: save file %s: %w", f.FileID, err)
	}
	return nil
}

// reuse copies the analysis results of the first upload of the same
// content into a duplicate.
func (f *File) reuse(orig File) {
	f.DuplicateOf = orig.FileID
	f.DuplicateTurn = orig.UploadedAtTurn
	f.Kind = orig.Kind
	f.ContentType = orig.ContentType
	f.Summary = orig.Summary
	f.AnalysisStatus = orig.AnalysisStatus
	f.Lines = orig.Lines
	f.FirstTS = orig.FirstTS
	f.LastTS = orig.LastTS
}

func (s *Store) checkUpload(u *Upload) error {
	if !validCaseID(u.CaseID) {
		return fmt.Errorf("%w: case id %q", ErrInvalidInput, u.CaseID)
	}
	if u.Body == nil {
		return fmt.Errorf("%w: no body", ErrInvalidInput)
	}
	if u.Turn < 0 {
		return fmt.Errorf("%w: negative turn %d", ErrInvalidInput, u.Turn)
	}
	switch u.UploadSource {
	case "":
		u.UploadSource = SourceFileUpload
	case SourceFileUpload, SourcePaste, SourcePageCapture, SourceScreenshot, SourceAgentGenerated:
	default:
		return fmt.Errorf("%w: upload source %q (want file_upload, paste, page_capture, screenshot or agent_generated)", ErrInvalidInput, u.UploadSource)
	}
	u.SourceURL = cleanURL(u.SourceURL)
	return nil
}

// cleanURL keeps a display-only URL printable and bounded.
func cleanURL(s string) string {
	s = strings.Map(func(r rune) rune {
		// Unlike a file name, a URL keeps its slashes: drop only what is
		// invisible or breaks lines.
		if r != '/' && r != '\\' && dropRune(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	const maxURL = 2048
	if len(s) > maxURL {
		cut := maxURL
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// tooLarge is the error for an upload over the cap, with the cap in it.
func (s *Store) tooLarge() error {
	return &limitError{msg: "evidence: file is larger than the " + humanSize(s.cfg.MaxUpload) + " limit"}
}

type limitError struct{ msg string }

func (e *limitError) Error() string        { return e.msg }
func (e *limitError) Is(target error) bool { return target == ErrTooLarge }

// humanSize formats a byte count for messages ("50 MB", "12.3 KB").
func humanSize(n int64) string {
	const k, m = 1 << 10, 1 << 20
	switch {
	case n >= m && n%m == 0:
		return strconv.FormatInt(n/m, 10) + " MB"
	case n >= m:
		return strconv.FormatFloat(float64(n)/m, 'f', 1, 64) + " MB"
	case n >= k && n%k == 0:
		return strconv.FormatInt(n/k, 10) + " KB"
	case n >= k:
		return strconv.FormatFloat(float64(n)/k, 'f', 1, 64) + " KB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// firstCopy returns the case's first file with this content and its
// analysis, if there is one.
func (s *Store) firstCopy(caseID, digest string) (File, analysis, bool, error) {
	id, err := s.ks.Get(hashKey(caseID, digest))
	if errors.Is(err, persistence.ErrNotFound) {
		return File{}, analysis{}, false, nil
	}
	if err != nil {
		return File{}, analysis{}, false, fmt.Errorf("evidence: look up content: %w", err)
	}
	f, err := s.get(caseID, string(id))
	if errors.Is(err, ErrNotFound) {
		return File{}, analysis{}, false, nil // being deleted: treat the content as new
	}
	if err != nil {
		return File{}, analysis{}, false, err
	}
	an, err := s.analysisOf(caseID, f.FileID)
	if err != nil {
		return File{}, analysis{}, false, err
	}
	return f, an, true, nil
}

// List returns the case's files, oldest first.
func (s *Store) List(ctx context.Context, caseID string) ([]File, error) {
	return s.scan(ctx, caseID, false)
}

// Count is how many files the case has (List's length), without reading
// their records.
func (s *Store) Count(_ context.Context, caseID string) (int, error) {
	if !validCaseID(caseID) {
		return 0, nil
	}
	n, err := s.ks.Count(filePrefix(caseID))
	if err != nil {
		return 0, fmt.Errorf("evidence: count files of case %s: %w", caseID, err)
	}
	return n, nil
}

func (s *Store) scan(ctx context.Context, caseID string, newestFirst bool) ([]File, error) {
	if !validCaseID(caseID) {
		return []File{}, nil // no such case can have files
	}
	out := []File{}
	err := s.ks.Scan(filePrefix(caseID), newestFirst, func(_, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var f File
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("evidence: decode file record: %w", err)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("evidence: list case %s: %w", caseID, err)
	}
	return out, nil
}

// Get returns one file of the case. A file id of another case is
// ErrNotFound, as is a malformed id.
func (s *Store) Get(_ context.Context, caseID, fileID string) (File, error) {
	return s.get(caseID, fileID)
}

func (s *Store) get(caseID, fileID string) (File, error) {
	if !validCaseID(caseID) || !validFileID(fileID) {
		return File{}, ErrNotFound
	}
	v, err := s.ks.Get(fileKey(caseID, fileID))
	if errors.Is(err, persistence.ErrNotFound) {
		return File{}, ErrNotFound
	}
	if err != nil {
		return File{}, fmt.Errorf("evidence: get file %s: %w", fileID, err)
	}
	var f File
	if err := json.Unmarshal(v, &f); err != nil {
		return File{}, fmt.Errorf("evidence: decode file %s: %w", fileID, err)
	}
	return f, nil
}

func (s *Store) analysisOf(caseID, fileID string) (analysis, error) {
	var an analysis
	v, err := s.ks.Get(analysisKey(caseID, fileID))
	if errors.Is(err, persistence.ErrNotFound) {
		return an, nil
	}
	if err != nil {
		return an, fmt.Errorf("evidence: get analysis of %s: %w", fileID, err)
	}
	if err := json.Unmarshal(v, &an); err != nil {
		return an, fmt.Errorf("evidence: decode analysis of %s: %w", fileID, err)
	}
	return an, nil
}

// Digests returns the case's files with their LLM digests, newest first.
// Repeated uploads of the same content appear once (the newest).
func (s *Store) Digests(ctx context.Context, caseID string) ([]File, error) {
	files, err := s.scan(ctx, caseID, true)
	if err != nil {
		return nil, err
	}
	files = distinct(files)
	for i := range files {
		an, err := s.analysisOf(caseID, files[i].FileID)
		if err != nil {
			return nil, err
		}
		files[i].Digest = an.Digest
	}
	return files, nil
}

// distinct keeps the first file of each content, in order.
func distinct(files []File) []File {
	seen := map[string]bool{}
	out := files[:0]
	for _, f := range files {
		if !seen[f.SHA256] {
			seen[f.SHA256] = true
			out = append(out, f)
		}
	}
	return out
}

// ctxReader fails reads once ctx is done, so a cancelled request stops
// streaming.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// lineCounter counts the lines of what streams through it.
type lineCounter struct {
	r        io.Reader
	newlines int64
	n        int64
	last     byte
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.newlines += int64(bytes.Count(p[:n], []byte{'\n'}))
		c.n += int64(n)
		c.last = p[n-1]
	}
	return n, err
}

// lines is the line count: a last line without a newline counts.
func (c *lineCounter) lines() int64 {
	if c.n > 0 && c.last != '\n' {
		return c.newlines + 1
	}
	return c.newlines
}
