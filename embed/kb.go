package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/embed/index"
	"github.com/faultmaven/faultmaven/persistence"
)

// Sentinel errors. Callers check them with errors.Is; the gateway maps them
// to HTTP statuses (404, 403, 415, 413, 400, 400).
var (
	ErrNotFound     = errors.New("embed: document not found")
	ErrForbidden    = errors.New("embed: forbidden")
	ErrUnsupported  = errors.New("embed: unsupported document format")
	ErrTooLarge     = errors.New("embed: document too large")
	ErrEmpty        = errors.New("embed: document is empty")
	ErrInvalidInput = errors.New("embed: invalid input")
	errClosed       = errors.New("embed: knowledge base is closed")
)

// Key layout of the "kb" keyspace. Everything else (the lexical index, the
// per-document visibility table) is derived from these at Open.
//
//	d/<docID>                          Document (JSON)
//	t/<docID>                          extracted text, written when the document is ready
//	c/<docID>/<n, 6 digits>            chunk (JSON)
//	j/<docID>                          pending ingestion job (JSON)
//	h/<scope>/<owner>/<case>/<sha256>  dedupe entry → docID
const (
	prefixDoc   = "d/"
	prefixText  = "t/"
	prefixChunk = "c/"
	prefixJob   = "j/"
	prefixHash  = "h/"
)

func docKey(id string) []byte      { return []byte(prefixDoc + id) }
func textKey(id string) []byte     { return []byte(prefixText + id) }
func jobKey(id string) []byte      { return []byte(prefixJob + id) }
func chunkPrefix(id string) []byte { return []byte(prefixChunk + id + "/") }
func chunkKey(id string, n int) []byte {
	return []byte(fmt.Sprintf("%s%s/%06d", prefixChunk, id, n))
}

// ChunkID is the deterministic id of chunk n of a document: "<docID>#<n>".
func ChunkID(docID string, n int) string { return docID + "#" + strconv.Itoa(n) }

// splitChunkID is the inverse of ChunkID.
func splitChunkID(id string) (docID string, n int, ok bool) {
	i := strings.LastIndexByte(id, '#')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	return id[:i], n, err == nil
}

// Config configures Open. Zero fields take the defaults.
type Config struct {
	ChunkChars  int         // target chunk size in bytes (default 1000)
	Overlap     int         // bytes shared by consecutive chunks of a section (default 200)
	MaxDocBytes int64       // largest accepted upload (default 20 MiB)
	Workers     int         // ingestion workers (default 1)
	Logger      *zap.Logger // default: no logging
	// Embedder, when set, embeds every chunk for hybrid search (BM25 and
	// vectors fused by reciprocal rank). Nil: lexical search only.
	Embedder Embedder
	// ModelID names the embedding model (see embed/model). Stored vectors
	// made under another ModelID are dropped and made again.
	ModelID string
	// IndexDir, when set, is where Close saves the vector index so that the
	// next Open need not rebuild its graph (see saveVectorSnapshot).
	IndexDir string
	// PDFCacheDir, when set, keeps the compiled PDF engine between runs:
	// the first PDF after a start then loads it in about 0.1 s with a
	// 64 MB peak instead of compiling it in about 3 s with a 360 MB peak
	// (docs/adr/0010). The engine is process-wide: the last KB opened
	// before the first PDF is read decides.
	PDFCacheDir string
	// QueryEmbedTimeout bounds embedding a search query; past it the search
	// is lexical only (default 2s).
	QueryEmbedTimeout time.Duration
	Now               func() time.Time // default: time.Now
}

// EnsureDefaults fills in zero fields.
func (c *Config) EnsureDefaults() {
	if c.ChunkChars == 0 {
		c.ChunkChars = 1000
	}
	if c.Overlap == 0 {
		c.Overlap = 200
	}
	if c.MaxDocBytes == 0 {
		c.MaxDocBytes = 20 << 20
	}
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.QueryEmbedTimeout <= 0 {
		c.QueryEmbedTimeout = 2 * time.Second
	}
}

// Validate rejects settings the chunker cannot honour.
func (c *Config) Validate() error {
	switch {
	case c.ChunkChars < 64:
		return fmt.Errorf("%w: ChunkChars %d is below 64", ErrInvalidInput, c.ChunkChars)
	case c.Overlap < 0 || c.Overlap > c.ChunkChars/2:
		return fmt.Errorf("%w: Overlap %d must be between 0 and ChunkChars/2 (%d)", ErrInvalidInput, c.Overlap, c.ChunkChars/2)
	case c.MaxDocBytes < 1:
		return fmt.Errorf("%w: MaxDocBytes must be positive", ErrInvalidInput)
	case c.Workers < 1 || c.Workers > 64:
		return fmt.Errorf("%w: Workers %d must be between 1 and 64", ErrInvalidInput, c.Workers)
	}
	return nil
}

// KB is the knowledge base. All methods are safe for concurrent use.
type KB struct {
	ks    *persistence.Keyspace
	blobs *persistence.BlobStore
	cfg   Config
	log   *zap.Logger

	// mu orders every change to documents, chunks and the index, so that a
	// delete and a finishing job can never interleave. It is always taken
	// before the index's own lock.
	mu   sync.RWMutex
	docs map[string]*docMeta // docID → what Search needs to filter and rank
	lex  *index.Lexical
	vec  *index.Vector // nil without an embedder
	// snapLoaded: the vector graph came from the snapshot at Open.
	snapLoaded bool
	hyb        index.Hybrid

	qmu     sync.Mutex
	queue   []string        // docIDs waiting for a worker
	queued  map[string]bool // members of queue or in flight
	wake    chan struct{}   // capacity 1: "the queue grew"
	closed  bool
	stop    chan struct{}
	stopCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// docMeta is the in-memory copy of the document fields that visibility and
// search filters need.
type docMeta struct {
	doc Document
}

// Open loads the knowledge base from ks (the "kb" keyspace) and blobs,
// rebuilds the lexical index from the stored chunks, then starts the
// workers, which resume every unfinished ingestion job.
func Open(ks *persistence.Keyspace, blobs *persistence.BlobStore, cfg Config) (*KB, error) {
	if ks == nil || blobs == nil {
		return nil, fmt.Errorf("%w: keyspace and blob store are required", ErrInvalidInput)
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PDFCacheDir != "" {
		setPDFCacheDir(cfg.PDFCacheDir)
	}
	k := &KB{
		ks: ks, blobs: blobs, cfg: cfg, log: cfg.Logger,
		docs:   make(map[string]*docMeta),
		lex:    index.NewLexical(),
		queued: make(map[string]bool),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	k.hyb = index.Hybrid{Lex: k.lex, Vec: nil}
	k.stopCtx, k.cancel = context.WithCancel(context.Background())
	start := time.Now()
	if err := k.load(); err != nil {
		return nil, err
	}
	backfill, err := k.openVectors()
	if err != nil {
		return nil, err
	}
	var jobs []string
	err = ks.Scan([]byte(prefixJob), false, func(key, _ []byte) error {
		jobs = append(jobs, strings.TrimPrefix(string(key), prefixJob))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embed: scan jobs: %w", err)
	}
	k.log.Info("knowledge base opened", zap.Int("documents", len(k.docs)), zap.Int("chunks", k.lex.Len()),
		zap.Int("resumed_jobs", len(jobs)), zap.Int("vectors", k.Vectors().Vectors),
		zap.Int("documents_to_embed", len(backfill)), zap.Duration("took", time.Since(start)))
	for _, id := range jobs {
		k.enqueue(id)
	}
	for _, id := range backfill {
		k.enqueue(id) // no job record: process backfills its vectors
	}
	for i := 0; i < cfg.Workers; i++ {
		k.wg.Add(1)
		go k.worker()
	}
	return k, nil
}

// load reads every document and rebuilds the index from the chunk keys.
func (k *KB) load() error {
	err := k.ks.Scan([]byte(prefixDoc), false, func(_, v []byte) error {
		var d Document
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode document: %w", err)
		}
		k.docs[d.DocumentID] = &docMeta{doc: d}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embed: load documents: %w", err)
	}
	err = k.ks.Scan([]byte(prefixChunk), false, func(key, v []byte) error {
		var c storedChunk
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode chunk %s: %w", key, err)
		}
		m, ok := k.docs[c.DocumentID]
		if !ok || m.doc.Status != StatusReady {
			return nil // orphan: its document is gone or not ready; never shown
		}
		k.lex.Add(ChunkID(c.DocumentID, c.N), c.indexText(m.doc.Title))
		return nil
	})
	if err != nil {
		return fmt.Errorf("embed: rebuild index: %w", err)
	}
	return nil
}

// Close stops the workers and waits for them. A job interrupted by Close
// stays in Pebble and is resumed by the next Open. Close is idempotent.
func (k *KB) Close() error {
	k.qmu.Lock()
	if k.closed {
		k.qmu.Unlock()
		return nil
	}
	k.closed = true
	close(k.stop)
	k.qmu.Unlock()
	k.cancel()
	k.wg.Wait()
	if err := k.saveVectorSnapshot(); err != nil {
		// Not fatal: the next start rebuilds the graph from Pebble.
		k.log.Warn("vector index snapshot not saved", zap.Error(err))
	}
	return nil
}

// enqueue hands docID to the workers unless it is already queued.
func (k *KB) enqueue(docID string) {
	k.qmu.Lock()
	if k.closed || k.queued[docID] {
		k.qmu.Unlock()
		return
	}
	k.queued[docID] = true
	k.queue = append(k.queue, docID)
	k.qmu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// next pops a queued docID, or returns false when the KB is closing.
func (k *KB) next() (string, bool) {
	for {
		k.qmu.Lock()
		if k.closed {
			k.qmu.Unlock()
			return "", false
		}
		if len(k.queue) > 0 {
			id := k.queue[0]
			k.queue = k.queue[1:]
			more := len(k.queue) > 0
			k.qmu.Unlock()
			if more { // let another worker take the rest
				select {
				case k.wake <- struct{}{}:
				default:
				}
			}
			return id, true
		}
		k.qmu.Unlock()
		select {
		case <-k.wake:
		case <-k.stop:
			return "", false
		}
	}
}

func (k *KB) done(docID string) {
	k.qmu.Lock()
	delete(k.queued, docID)
	k.qmu.Unlock()
}

func (k *KB) worker() {
	defer k.wg.Done()
	for {
		id, ok := k.next()
		if !ok {
			return
		}
		if err := k.process(k.stopCtx, id); err != nil && !errors.Is(err, context.Canceled) {
			k.log.Error("ingestion job failed to complete", zap.String("document_id", id), zap.Error(err))
		}
		k.done(id)
	}
}

// Pending is the number of jobs queued or in flight.
func (k *KB) Pending() int {
	k.qmu.Lock()
	defer k.qmu.Unlock()
	return len(k.queued)
}

// WaitIdle blocks until no ingestion job is queued or running, or ctx ends.
// It is meant for tests and the CLI; servers never need it.
func (k *KB) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		k.qmu.Lock()
		n, closed := len(k.queued), k.closed
		k.qmu.Unlock()
		if n == 0 {
			return nil
		}
		if closed {
			return errClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
