package embed

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/faultmaven/faultmaven/persistence"
)

// TestMain keeps the compiled PDF engine in a directory of its own for the
// package's tests: the first PDF compiles it (about 25 s under the race
// detector), and a test that restarts the engine then loads it instead.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faultmaven-embed-pdfium-")
	if err != nil {
		panic(err)
	}
	setPDFCacheDir(dir)
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// env is a real on-disk store and a KB over it; reopen simulates a restart.
type env struct {
	t     *testing.T
	dir   string
	store *persistence.Store
	kb    *KB
	cfg   Config
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), cfg: cfg}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	st, err := persistence.Open(e.dir, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	ks, err := st.Keyspace(persistence.SpaceKB)
	if err != nil {
		e.t.Fatal(err)
	}
	kb, err := Open(ks, ks.Blobs(), e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store, e.kb = st, kb
}

func (e *env) close() {
	if e.kb != nil {
		_ = e.kb.Close()
		e.kb = nil
	}
	if e.store != nil {
		_ = e.store.Close()
		e.store = nil
	}
}

func (e *env) reopen() { e.close(); e.open() }

// wait waits for every job to end. The bound is generous: the first PDF
// of the process compiles the PDF engine, which takes 3–4 s alone and far
// longer while the rest of the suite runs on the same cores.
func (e *env) wait() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := e.kb.WaitIdle(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) upload(u Upload, body string) Document {
	e.t.Helper()
	if u.Owner == "" {
		u.Owner = "alice"
	}
	u.Body = strings.NewReader(body)
	d, _, err := e.kb.Upload(context.Background(), u)
	if err != nil {
		e.t.Fatalf("upload %s: %v", u.Filename, err)
	}
	return d
}

func (e *env) search(v Viewer, q string) []Result {
	e.t.Helper()
	res, err := e.kb.Search(context.Background(), v, SearchQuery{Query: q, Limit: 50})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) countKeys(prefix string) int {
	e.t.Helper()
	n := 0
	if err := e.kb.ks.Scan([]byte(prefix), false, func(_, _ []byte) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func hasDoc(res []Result, id string) bool {
	for _, r := range res {
		if r.DocumentID == id {
			return true
		}
	}
	return false
}

var (
	alice = Viewer{UserID: "alice"}
	bob   = Viewer{UserID: "bob"}
	admin = Viewer{UserID: "root", IsAdmin: true}
)
