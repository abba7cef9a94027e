package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/embed/embedpool"
	"github.com/faultmaven/faultmaven/embed/model"
	"github.com/faultmaven/faultmaven/persistence"
)

// ingestConfig is the ingest command's flags.
type ingestConfig struct {
	embedder  string // none, ort or hugot
	dir       string
	ortLib    string
	threads   int
	workers   int
	kbWorkers int
	corpus    string
	copies    int
	timeout   time.Duration
	name      string
	out       string
}

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ingest", stderr)
	var c ingestConfig
	fs.StringVar(&c.embedder, "embed", "none", "none (lexical only), ort or hugot (through the embedding pool)")
	fs.StringVar(&c.dir, "model", "", "model directory (with -embed ort or hugot)")
	fs.StringVar(&c.ortLib, "ort-lib", "", "libonnxruntime.so (default: $FM_ORT_LIB, then the usual places)")
	fs.IntVar(&c.threads, "threads", 1, "ONNX Runtime intra-op threads per embedder")
	fs.IntVar(&c.workers, "workers", 0, "embedder actors in the pool (default: the server's, one per core for ort)")
	fs.IntVar(&c.kbWorkers, "kb-workers", 0, "documents ingested at once (default: the server's, one per embedder actor, 1 without a model)")
	fs.StringVar(&c.corpus, "corpus", "testdata/kb/runbooks", "directory of markdown runbooks")
	fs.IntVar(&c.copies, "copies", 1, "upload the corpus this many times, each copy with distinct titles and content")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "give up when ingestion takes longer")
	fs.StringVar(&c.name, "name", "", "row name in the report (default ingest-<embed>-x<copies>)")
	fs.StringVar(&c.out, "json", "", "result file (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch c.embedder {
	case "none", "ort", "hugot":
	default:
		return fmt.Errorf("-embed %q: want none, ort or hugot", c.embedder)
	}
	if c.embedder != "none" && c.dir == "" {
		return fmt.Errorf("-embed %s needs -model", c.embedder)
	}
	if c.copies < 1 || c.threads < 1 || c.kbWorkers < 0 {
		return fmt.Errorf("want -copies and -threads ≥ 1, -kb-workers ≥ 0")
	}
	if c.name == "" {
		c.name = fmt.Sprintf("ingest-%s-x%d", c.embedder, c.copies)
		if c.kbWorkers > 0 {
			c.name += fmt.Sprintf("-kbw%d", c.kbWorkers)
		}
	}
	r, err := measureIngest(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-16s %d documents, %d chunks, %d vectors in %.2f s: %.1f documents/s, %.1f chunks/s, peak RSS %.0f MiB\n",
		r.Name, r.Documents, r.Chunks, r.Vectors, r.Seconds, r.DocsPerSec, r.ChunksPerSec, r.PeakRSSMiB)
	if c.out != "" {
		return writeResult(c.out, r)
	}
	return nil
}

// measureIngest uploads the corpus into a fresh knowledge base on a
// temporary directory and times it until every document is ready. The
// embedder, when there is one, is opened and warmed before the clock
// starts, as the server does before it accepts ingestion.
func measureIngest(ctx context.Context, c ingestConfig) (res *result, err error) {
	docs, err := readCorpus(c.corpus)
	if err != nil {
		return nil, err
	}
	r := &result{Kind: "ingest", Name: c.name, Runtime: "go", Backend: c.embedder, LoadAverage: loadAverage(), Copies: c.copies,
		KBWorkers: max(c.kbWorkers, 1)}
	tmp, err := os.MkdirTemp("", "fmembedbench-kb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	cfg := embed.Config{Workers: c.kbWorkers}
	if c.embedder != "none" {
		b, _ := model.ParseBackend(c.embedder)
		m, err := model.Open(model.Config{Dir: c.dir, Backend: b, ORTLib: c.ortLib, Threads: c.threads})
		if err != nil {
			return nil, err
		}
		defer m.Close()
		if m.Info().Backend != b {
			return nil, fmt.Errorf("opened %s, not %s: %s", m.Info().Backend, b, m.Info().Why)
		}
		if err := m.Warm(ctx); err != nil {
			return nil, err
		}
		workers := c.workers
		if workers <= 0 {
			workers = 1
			if b == model.ORT {
				workers = runtime.NumCPU()
			}
		}
		r.Threads = c.threads
		if c.kbWorkers <= 0 { // the server's default: one ingestion worker per embedder
			cfg.Workers = min(workers, 64)
			r.KBWorkers = cfg.Workers
		}
		engine, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			return nil, err
		}
		pool, err := embedpool.Start(engine, m, embedpool.Config{Workers: workers})
		if err != nil {
			return nil, err
		}
		defer pool.Stop() // deferred after m.Close, so it runs first
		cfg.Embedder, cfg.ModelID = pool, "fmembedbench"
	}

	st, err := persistence.Open(tmp, nil)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	ks, err := st.Keyspace(persistence.SpaceKB)
	if err != nil {
		return nil, err
	}
	kb, err := embed.Open(ks, ks.Blobs(), cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, kb.Close()) }()

	start := time.Now()
	for k := 1; k <= c.copies; k++ {
		for _, d := range docs {
			title, body := d.title, d.body
			if c.copies > 1 {
				title, body = copyOf(d, k)
			}
			_, dup, err := kb.Upload(ctx, embed.Upload{Owner: "bench", Title: title, Filename: d.name,
				DocumentType: "runbook", Body: strings.NewReader(body)})
			if err != nil {
				return nil, fmt.Errorf("upload %s copy %d: %w", d.name, k, err)
			}
			if dup {
				return nil, fmt.Errorf("upload %s copy %d: taken for a duplicate", d.name, k)
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := kb.WaitIdle(wctx); err != nil {
		return nil, fmt.Errorf("waiting for ingestion: %w", err)
	}
	r.Seconds = time.Since(start).Seconds()

	viewer := embed.Viewer{UserID: "bench"}
	for off := 0; ; off += 500 {
		page, total, err := kb.List(ctx, viewer, embed.ListQuery{Limit: 500, Offset: off})
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			if d.Status != embed.StatusReady {
				return nil, fmt.Errorf("document %s (%s) is %s: %s", d.DocumentID, d.Title, d.Status, d.Error)
			}
			r.Documents++
			r.Chunks += d.Chunks
		}
		if off+500 >= total {
			break
		}
	}
	if want := len(docs) * c.copies; r.Documents != want {
		return nil, fmt.Errorf("%d documents ready, want %d", r.Documents, want)
	}
	vs := kb.Vectors()
	r.Vectors = vs.Vectors
	if cfg.Embedder != nil && vs.Vectors != r.Chunks {
		return nil, fmt.Errorf("%d vectors for %d chunks", vs.Vectors, r.Chunks)
	}
	r.DocsPerSec = float64(r.Documents) / r.Seconds
	r.ChunksPerSec = float64(r.Chunks) / r.Seconds
	r.PeakRSSMiB = peakRSSMiB()
	return r, nil
}

// copyOf is copy k of a runbook: its title and first heading carry the
// copy number, so the copy is a distinct document (not a re-upload of the
// same content) with the same text otherwise.
func copyOf(d runbook, k int) (title, body string) {
	title = fmt.Sprintf("%s (copy %d)", d.title, k)
	if i := strings.Index(d.body, "# "+d.title); i >= 0 && (i == 0 || d.body[i-1] == '\n') {
		j := i + len("# "+d.title)
		return title, d.body[:i] + "# " + title + d.body[j:]
	}
	return title, "# " + title + "\n\n" + d.body
}
