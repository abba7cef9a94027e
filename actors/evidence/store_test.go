package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/faultmaven/faultmaven/persistence"
)

const (
	caseA = "case_a"
	caseB = "case_b"
)

type harness struct {
	*Store
	db  *persistence.Store
	now time.Time
}

// newHarness opens a real Pebble store and blob store in a temp dir.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	db, err := persistence.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ks, err := db.Keyspace(persistence.SpaceEvid)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{db: db, now: time.Date(2024, 3, 1, 15, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		var mu sync.Mutex
		cfg.Now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			h.now = h.now.Add(time.Second)
			return h.now
		}
	}
	h.Store, err = New(ks, ks.Blobs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) put(t *testing.T, caseID, name, body string) File {
	t.Helper()
	f, err := h.Put(context.Background(), Upload{CaseID: caseID, Filename: name, Turn: 1, Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("Put %s: %v", name, err)
	}
	return f
}

func (h *harness) blobExists(t *testing.T, digest string) bool {
	t.Helper()
	f, err := h.ks.Blobs().Open(digest)
	if errors.Is(err, persistence.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return true
}

func (h *harness) tmpFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(h.db.Dir(), "blobs", "evid", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// keys lists the raw keys of the evid keyspace under prefix.
func (h *harness) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	if err := h.ks.Scan([]byte(prefix), false, func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPutListGetDelete(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	f1, err := h.Put(ctx, Upload{CaseID: caseA, Filename: "../../var/log/app.log", UploadSource: SourceFileUpload, Turn: 3,
		Body: strings.NewReader(sampleLog4j)})
	if err != nil {
		t.Fatal(err)
	}
	if !validFileID(f1.FileID) || f1.Filename != "app.log" || f1.Kind != KindLogs || f1.UploadedAtTurn != 3 ||
		f1.SizeBytes != int64(len(sampleLog4j)) || len(f1.SHA256) != 64 || f1.Lines != 10 || f1.DuplicateOf != "" ||
		f1.AnalysisStatus != AnalysisCompleted || f1.Summary == "" || f1.UploadSource != SourceFileUpload {
		t.Fatalf("unexpected file: %+v", f1)
	}
	f2, err := h.Put(ctx, Upload{CaseID: caseA, Filename: "config.yaml", UploadSource: SourcePaste, Body: strings.NewReader(sampleYAML)})
	if err != nil {
		t.Fatal(err)
	}
	if f2.Kind != KindConfiguration || f2.UploadSource != SourcePaste || f2.AnalysisStatus != AnalysisCompleted {
		t.Fatalf("unexpected file: %+v", f2)
	}

	list, err := h.List(ctx, caseA)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].FileID != f1.FileID || list[1].FileID != f2.FileID {
		t.Fatalf("List = %+v, want [f1 f2]", list)
	}
	count := func(caseID string) int {
		t.Helper()
		n, err := h.Count(ctx, caseID)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if a, b, bad := count(caseA), count(caseB), count("../"+caseA); a != 2 || b != 0 || bad != 0 {
		t.Fatalf("Count = %d, %d, %d; want 2, 0, 0", a, b, bad)
	}
	got, err := h.Get(ctx, caseA, f1.FileID)
	if err != nil {
		t.Fatal(err)
	}
	if got.FileID != f1.FileID || got.Summary != f1.Summary || !got.UploadedAt.Equal(f1.UploadedAt) {
		t.Fatalf("Get = %+v, want %+v", got, f1)
	}

	// Another case's file id, a malformed id and an unknown case are all "not found".
	for _, tc := range []struct{ caseID, fileID string }{
		{caseB, f1.FileID}, {caseA, "ev_nope"}, {caseA, "../" + f1.FileID}, {caseA + "/x", f1.FileID}, {"", f1.FileID},
	} {
		if _, err := h.Get(ctx, tc.caseID, tc.fileID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q, %q) err = %v, want ErrNotFound", tc.caseID, tc.fileID, err)
		}
		if _, err := h.Read(ctx, tc.caseID, tc.fileID, 1, 2); !errors.Is(err, ErrNotFound) {
			t.Errorf("Read(%q, %q) err = %v, want ErrNotFound", tc.caseID, tc.fileID, err)
		}
		if err := h.Delete(ctx, tc.caseID, tc.fileID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q, %q) err = %v, want ErrNotFound", tc.caseID, tc.fileID, err)
		}
	}
	if other, err := h.List(ctx, caseB); err != nil || len(other) != 0 {
		t.Fatalf("List(caseB) = %v, %v", other, err)
	}

	if err := h.Delete(ctx, caseA, f1.FileID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Get(ctx, caseA, f1.FileID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if h.blobExists(t, f1.SHA256) {
		t.Fatal("blob of the deleted file is still there")
	}
	if err := h.Delete(ctx, caseA, f1.FileID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	list, _ = h.List(ctx, caseA)
	if len(list) != 1 || list[0].FileID != f2.FileID {
		t.Fatalf("List after Delete = %+v", list)
	}
	if n := count(caseA); n != 1 {
		t.Fatalf("Count after Delete = %d, want 1", n)
	}
	if keys := h.keys(t, "a/"+caseA+"/"+f1.FileID); len(keys) != 0 {
		t.Fatalf("analysis left behind: %v", keys)
	}
}

func TestPutValidation(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	for _, u := range []Upload{
		{CaseID: "", Body: strings.NewReader("x")},
		{CaseID: "case/x", Body: strings.NewReader("x")},
		{CaseID: caseA},
		{CaseID: caseA, UploadSource: "carrier_pigeon", Body: strings.NewReader("x")},
		{CaseID: caseA, Turn: -1, Body: strings.NewReader("x")},
	} {
		if _, err := h.Put(ctx, u); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Put(%+v) err = %v, want ErrInvalidInput", u, err)
		}
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
}

func TestPutEmpty(t *testing.T) {
	h := newHarness(t, Config{})
	_, err := h.Put(context.Background(), Upload{CaseID: caseA, Filename: "empty.log", Body: strings.NewReader("")})
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("err = %v, want ErrEmpty", err)
	}
	if !strings.Contains(err.Error(), "empty") {
		t.Fatalf("unclear message %q", err)
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
	if h.blobExists(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {
		t.Fatal("empty blob stored")
	}
}

// fillReader produces n bytes of 'a' without allocating them.
type fillReader struct{ n int64 }

func (r *fillReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n)
	for i := range p[:k] {
		p[i] = 'a'
	}
	r.n -= k
	return int(k), nil
}

func TestPutTooLarge(t *testing.T) {
	h := newHarness(t, Config{}) // default 50 MiB cap
	src := &fillReader{n: DefaultMaxUpload + 1}
	_, err := h.Put(context.Background(), Upload{CaseID: caseA, Filename: "huge.log", Body: src})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if want := "file is larger than the 50 MB limit"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not say %q", err, want)
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
	if tmp := h.tmpFiles(t); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
	// Exactly at the cap is fine.
	small := newHarness(t, Config{MaxUpload: 64 << 10})
	if _, err := small.Put(context.Background(), Upload{CaseID: caseA, Body: &fillReader{n: 64 << 10}}); err != nil {
		t.Fatalf("upload at the cap: %v", err)
	}
	if _, err := small.Put(context.Background(), Upload{CaseID: caseA, Body: &fillReader{n: 64<<10 + 1}}); !errors.Is(err, ErrTooLarge) ||
		!strings.Contains(err.Error(), "64 KB limit") {
		t.Fatalf("over the cap: %v", err)
	}
}

func TestPutBinaryNamedLog(t *testing.T) {
	h := newHarness(t, Config{})
	body := "\x00\x01\x02ELF" + strings.Repeat("\x00\xff\x10", 1000)
	f := h.put(t, caseA, "app.log", body)
	if f.Kind != KindBinary || f.AnalysisStatus != AnalysisSkipped || f.Lines != 0 {
		t.Fatalf("binary .log: %+v", f)
	}
	if _, err := h.Read(context.Background(), caseA, f.FileID, 1, 10); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Read of binary: %v", err)
	}
	res, err := h.ReadBytes(context.Background(), caseA, f.FileID, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Text, "00000010  ") || strings.Count(res.Text, "\n") != 2 {
		t.Fatalf("hex dump:\n%s", res.Text)
	}
}

// TestPutUTF16Log: a log written as UTF-16 with a byte order mark (what
// Windows PowerShell's '>' writes) is stored as UTF-8 and then analysed,
// read and searched as text, in either byte order.
func TestPutUTF16Log(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	for _, order := range []struct {
		name string
		bom  []byte
		put  func([]byte, uint16)
	}{
		{"little endian", []byte{0xFF, 0xFE}, func(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }},
		{"big endian", []byte{0xFE, 0xFF}, func(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }},
	} {
		text := sampleLog4j + "2024-03-01 14:02:14,000 ERROR [pool-3] com.example.Café - naïve retry failed ✗\n"
		body := append([]byte(nil), order.bom...)
		for _, u := range utf16.Encode([]rune(text)) {
			var b [2]byte
			order.put(b[:], u)
			body = append(body, b[:]...)
		}
		f, err := h.Put(ctx, Upload{CaseID: caseA, Filename: "ps-" + strings.ReplaceAll(order.name, " ", "-") + ".log", Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind != KindLogs || f.AnalysisStatus != AnalysisCompleted || !strings.Contains(f.Summary, "converted from UTF-16") ||
			f.Lines != int64(strings.Count(text, "\n")) || f.SizeBytes != int64(len(text)) {
			t.Fatalf("%s: %+v", order.name, f)
		}
		res, err := h.Read(ctx, caseA, f.FileID, 1, 100)
		if err != nil || res.Text != strings.TrimSuffix(text, "\n") {
			t.Fatalf("%s: read back %q, %v", order.name, res.Text, err)
		}
		found, err := h.Search(ctx, caseA, SearchQuery{Pattern: "naïve retry", FileID: f.FileID})
		if err != nil || len(found.Matches) != 1 {
			t.Fatalf("%s: search: %+v %v", order.name, found, err)
		}
	}
}

func TestDuplicates(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	first, err := h.Put(ctx, Upload{CaseID: caseA, Filename: "app.log", Turn: 2, Body: strings.NewReader(sampleLog4j)})
	if err != nil {
		t.Fatal(err)
	}
	again := h.put(t, caseA, "app-copy.txt", sampleLog4j)
	if again.DuplicateOf != first.FileID || again.DuplicateTurn != 2 || again.FileID == first.FileID || again.Filename != "app-copy.txt" {
		t.Fatalf("duplicate: %+v", again)
	}
	if again.Summary != first.Summary || again.Kind != first.Kind || again.AnalysisStatus != first.AnalysisStatus || again.Lines != first.Lines {
		t.Fatalf("duplicate did not reuse the analysis: %+v vs %+v", again, first)
	}
	third := h.put(t, caseA, "third.log", sampleLog4j)
	if third.DuplicateOf != first.FileID {
		t.Fatalf("third copy points at %q, want the first %q", third.DuplicateOf, first.FileID)
	}
	other := h.put(t, caseB, "app.log", sampleLog4j)
	if other.DuplicateOf != "" || other.SHA256 != first.SHA256 {
		t.Fatalf("other case: %+v", other)
	}
	if n, _ := h.refCount(first.SHA256); n != 4 {
		t.Fatalf("refcount %d, want 4", n)
	}
	// Deleting the first copy hands "first" to the oldest remaining one.
	if err := h.Delete(ctx, caseA, first.FileID); err != nil {
		t.Fatal(err)
	}
	fourth := h.put(t, caseA, "fourth.log", sampleLog4j)
	if fourth.DuplicateOf != again.FileID {
		t.Fatalf("after deleting the first, duplicate_of = %q, want %q", fourth.DuplicateOf, again.FileID)
	}
	// Digests show the content once.
	ds, err := h.Digests(ctx, caseA)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].FileID != fourth.FileID {
		t.Fatalf("Digests = %+v, want only the newest copy", ds)
	}
}

func TestRefcountedBlobs(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	a := h.put(t, caseA, "a.log", sampleSyslog)
	b := h.put(t, caseB, "b.log", sampleSyslog)
	if a.SHA256 != b.SHA256 {
		t.Fatal("same content, different digests")
	}
	if err := h.Delete(ctx, caseA, a.FileID); err != nil {
		t.Fatal(err)
	}
	if !h.blobExists(t, b.SHA256) {
		t.Fatal("blob removed while case B still references it")
	}
	res, err := h.Read(ctx, caseB, b.FileID, 1, 0)
	if err != nil || res.Text != strings.TrimSuffix(sampleSyslog, "\n") {
		t.Fatalf("case B's copy unreadable: %q, %v", res.Text, err)
	}
	if err := h.Delete(ctx, caseB, b.FileID); err != nil {
		t.Fatal(err)
	}
	if h.blobExists(t, b.SHA256) {
		t.Fatal("blob still there after its last reference went")
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

func TestDeleteCase(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	shared := h.put(t, caseA, "shared.log", sampleKlog)
	h.put(t, caseA, "shared-again.log", sampleKlog)
	own := h.put(t, caseA, "own.yaml", sampleYAML)
	kept := h.put(t, caseB, "shared.log", sampleKlog)
	// A case whose id extends caseA's must not be touched.
	h.put(t, caseA+"x", "own.yaml", sampleYAML)

	if err := h.DeleteCase(ctx, caseA); err != nil {
		t.Fatal(err)
	}
	if list, _ := h.List(ctx, caseA); len(list) != 0 {
		t.Fatalf("files left: %+v", list)
	}
	if h.blobExists(t, shared.SHA256) != true || h.blobExists(t, own.SHA256) != true {
		t.Fatal("blobs still referenced by other cases were removed")
	}
	if n, _ := h.refCount(shared.SHA256); n != 1 {
		t.Fatalf("refcount %d, want 1", n)
	}
	if _, err := h.Read(ctx, caseB, kept.FileID, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteCase(ctx, caseB); err != nil {
		t.Fatal(err)
	}
	if h.blobExists(t, shared.SHA256) {
		t.Fatal("blob not removed with its last case")
	}
	if err := h.DeleteCase(ctx, caseA+"x"); err != nil {
		t.Fatal(err)
	}
	if h.blobExists(t, own.SHA256) {
		t.Fatal("blob not removed with its last case")
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

// TestConcurrentUploads races uploads of the same content with deletions:
// the reference count always equals the number of records, each case has
// one original, and the blob goes exactly when its last reference does.
func TestConcurrentUploads(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	files := make([]File, 2*n)
	errs := make([]error, 2*n)
	for i := range 2 * n {
		wg.Go(func() {
			c := caseA
			if i%2 == 1 {
				c = caseB
			}
			files[i], errs[i] = h.Put(ctx, Upload{CaseID: c, Filename: fmt.Sprintf("f%d.log", i), Body: strings.NewReader(sampleLog4j)})
			if errs[i] == nil && i%4 == 3 {
				errs[i] = h.Delete(ctx, c, files[i].FileID)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	digest := files[0].SHA256
	records := 0
	for _, c := range []string{caseA, caseB} {
		list, err := h.List(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		records += len(list)
		originals := 0
		for _, f := range list {
			if f.DuplicateOf == "" {
				originals++
			}
		}
		first, err := h.ks.Get(hashKey(c, digest))
		if err != nil || originals > 1 || len(list) == 0 {
			t.Fatalf("%s: %d files, %d originals, first %q (%v)", c, len(list), originals, first, err)
		}
		if _, err := h.Get(ctx, c, string(first)); err != nil {
			t.Fatalf("%s: first copy %s: %v", c, first, err)
		}
	}
	if n, _ := h.refCount(digest); n != int64(records) {
		t.Fatalf("refcount %d, want %d records", n, records)
	}
	if !h.blobExists(t, digest) {
		t.Fatal("blob gone while referenced")
	}
	for _, c := range []string{caseA, caseB} {
		if err := h.DeleteCase(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if h.blobExists(t, digest) {
		t.Fatal("blob left after every reference went")
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys left: %v", keys)
	}
}

func TestPutCancelled(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Put(ctx, Upload{CaseID: caseA, Body: strings.NewReader(sampleLog4j)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if keys := h.keys(t, ""); len(keys) != 0 {
		t.Fatalf("keys written: %v", keys)
	}
}

func TestNewValidates(t *testing.T) {
	db, err := persistence.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kb, _ := db.Keyspace(persistence.SpaceKB)
	if _, err := New(kb, kb.Blobs(), Config{}); err == nil {
		t.Fatal("accepted another module's keyspace")
	}
	ks, _ := db.Keyspace(persistence.SpaceEvid)
	if _, err := New(ks, nil, Config{}); err == nil {
		t.Fatal("accepted a nil blob store")
	}
	if _, err := New(ks, ks.Blobs(), Config{MaxReadBytes: 10}); err == nil || !strings.Contains(err.Error(), "MaxReadBytes") {
		t.Fatalf("bad config: %v", err)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{50 << 20: "50 MB", 10 << 20: "10 MB", 1536: "1.5 KB", 64 << 10: "64 KB", 999: "999 bytes", 3 << 19: "1.5 MB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
