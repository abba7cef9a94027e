package embed

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/embed/index"
	"github.com/faultmaven/faultmaven/persistence"
)

// Embedder turns texts into unit-length vectors of one dimension. The
// server passes the embedding pool (embed/embedpool); tests may pass a
// model directly (embed/model). It must be safe for concurrent use.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dim() int
}

// Vector keys of the "kb" keyspace:
//
//	v/<docID>/<n, 6 digits>   chunk n's vector, float32 little-endian
//	m/vectors                 the Config.ModelID that made every v/ entry
const (
	prefixVec   = "v/"
	keyVecModel = "m/vectors"
)

func vecPrefix(id string) []byte { return []byte(prefixVec + id + "/") }
func vecKey(id string, n int) []byte {
	return []byte(fmt.Sprintf("%s%s/%06d", prefixVec, id, n))
}

func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVec(b []byte, dim int) ([]float32, bool) {
	if len(b) != 4*dim {
		return nil, false
	}
	v := make([]float32, dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, true
}

// openVectors sets up the vector index when an embedder is configured:
// vectors made by another model are dropped, the stored ones are indexed,
// and every ready document still missing vectors is queued for a backfill.
// Vectors are derived state: losing them costs a re-embedding, nothing
// else.
func (k *KB) openVectors() ([]string, error) {
	if k.cfg.Embedder == nil {
		return nil, nil
	}
	dim := k.cfg.Embedder.Dim()
	if dim < 1 {
		return nil, fmt.Errorf("%w: embedder reports dimension %d", ErrInvalidInput, dim)
	}
	k.vec = index.NewVector(dim, index.VectorOptions{})
	k.hyb.Vec = k.vec
	prev, err := k.ks.Get([]byte(keyVecModel))
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("embed: read vector model: %w", err)
	}
	if string(prev) != k.cfg.ModelID {
		b := k.ks.NewBatch()
		_ = b.DeletePrefix([]byte(prefixVec))
		_ = b.Set([]byte(keyVecModel), []byte(k.cfg.ModelID))
		err := b.Commit(true)
		b.Close()
		if err != nil {
			return nil, fmt.Errorf("embed: reset vectors for a new model: %w", err)
		}
		if len(prev) > 0 {
			k.log.Info("embedding model changed: every document is embedded again",
				zap.String("previous", string(prev)), zap.String("model", k.cfg.ModelID))
		}
	}
	// First pass: which chunks have a usable vector. Vectors are decoded
	// only when the graph has to be rebuilt (second pass): a matching
	// snapshot makes them unnecessary.
	var ids []string
	have := map[string]int{}
	bad := 0
	err = k.scanVectors(dim, func(id, docID string, v []byte) {
		if v == nil {
			bad++
			return
		}
		ids = append(ids, id)
		have[docID]++
	})
	if err != nil {
		return nil, fmt.Errorf("embed: load vectors: %w", err)
	}
	if !k.loadVectorSnapshot(ids) {
		if len(ids) > 20_000 {
			k.log.Info("building the vector index from stored vectors; this takes a while", zap.Int("vectors", len(ids)))
		}
		err = k.scanVectors(dim, func(id, docID string, v []byte) {
			if v == nil {
				return
			}
			vec, _ := decodeVec(v, dim)
			if err := k.vec.Add(id, vec); err != nil {
				have[docID]-- // re-embedded by the backfill
			}
		})
		if err != nil {
			return nil, fmt.Errorf("embed: load vectors: %w", err)
		}
	}
	var backfill []string
	for id, m := range k.docs {
		if m.doc.Status == StatusReady && have[id] < m.doc.Chunks {
			backfill = append(backfill, id)
		}
	}
	if bad > 0 {
		k.log.Warn("ignored corrupt stored vectors; their documents are embedded again", zap.Int("vectors", bad))
	}
	return backfill, nil
}

// scanVectors calls fn for every stored vector of a ready document's
// existing chunk, with v nil when the stored bytes are not a vector of
// dimension dim.
func (k *KB) scanVectors(dim int, fn func(chunkID, docID string, v []byte)) error {
	return k.ks.Scan([]byte(prefixVec), false, func(key, v []byte) error {
		docID, n, ok := splitVecKey(key)
		m, known := k.docs[docID]
		if !ok || !known || m.doc.Status != StatusReady || n >= m.doc.Chunks {
			return nil
		}
		if len(v) != 4*dim {
			v = nil
		}
		fn(ChunkID(docID, n), docID, v)
		return nil
	})
}

func splitVecKey(key []byte) (string, int, bool) {
	s := strings.TrimPrefix(string(key), prefixVec)
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", 0, false
	}
	var n int
	if _, err := fmt.Sscanf(s[i+1:], "%d", &n); err != nil {
		return "", 0, false
	}
	return s[:i], n, true
}

// embedChunks embeds the chunks' index texts. A busy pool is waited out
// (with backoff) until ctx ends; any other failure is returned, and the
// caller indexes the document lexically only.
func (k *KB) embedChunks(ctx context.Context, texts []string) ([][]float32, error) {
	const batch = 64
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += batch {
		part := texts[start:min(len(texts), start+batch)]
		wait := 20 * time.Millisecond
		for {
			vecs, err := k.cfg.Embedder.Embed(ctx, part)
			if err == nil {
				if len(vecs) != len(part) {
					return nil, fmt.Errorf("embedder returned %d vectors for %d texts", len(vecs), len(part))
				}
				out = append(out, vecs...)
				break
			}
			if !isBusy(err) || ctx.Err() != nil {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
		}
	}
	return out, nil
}

// isBusy recognises a full embedding queue without importing the pool.
func isBusy(err error) bool {
	var b interface{ Busy() bool }
	return errors.As(err, &b) && b.Busy()
}

// backfillVectors embeds a ready document that has no (or not all) vectors:
// after a model was added or changed, or when embedding failed at
// ingestion. It reads the stored chunks and writes only v/ keys.
func (k *KB) backfillVectors(ctx context.Context, id string) error {
	k.mu.RLock()
	m, ok := k.docs[id]
	var d Document
	if ok {
		d = m.doc
	}
	k.mu.RUnlock()
	if !ok || d.Status != StatusReady || d.Chunks == 0 {
		return nil
	}
	var ids []string
	var texts []string
	err := k.ks.Scan(chunkPrefix(id), false, func(_, v []byte) error {
		var c storedChunk
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode chunk: %w", err)
		}
		ids = append(ids, ChunkID(id, c.N))
		texts = append(texts, c.indexText(d.Title))
		return nil
	})
	if err != nil {
		return fmt.Errorf("read chunks of %s: %w", id, err)
	}
	vecs, err := k.embedChunks(ctx, texts)
	if err != nil {
		return fmt.Errorf("embed %s: %w", id, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if m, ok := k.docs[id]; !ok || m.doc.Status != StatusReady || m.doc.UpdatedAt != d.UpdatedAt {
		return nil // deleted or re-ingested meanwhile
	}
	b := k.ks.NewBatch()
	defer b.Close()
	for i, cid := range ids {
		_, n, _ := splitChunkID(cid)
		_ = b.Set(vecKey(id, n), encodeVec(vecs[i]))
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("store vectors of %s: %w", id, err)
	}
	for i, cid := range ids {
		if err := k.vec.Add(cid, vecs[i]); err != nil {
			k.log.Warn("vector not indexed", zap.String("chunk_id", cid), zap.Error(err))
		}
	}
	return nil
}

// queryVector embeds a search query, or returns nil (lexical search only)
// when there is no embedder, no vectors yet, or the embedder fails or is
// slower than the query budget.
func (k *KB) queryVector(ctx context.Context, q string) []float32 {
	if k.vec == nil || k.vec.Len() == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, k.cfg.QueryEmbedTimeout)
	defer cancel()
	vecs, err := k.cfg.Embedder.Embed(ctx, []string{q})
	if err != nil || len(vecs) != 1 {
		k.log.Debug("query not embedded; lexical search only", zap.Error(err))
		return nil
	}
	return vecs[0]
}

// VectorStats reports how much of the knowledge base is embedded.
type VectorStats struct {
	Enabled bool `json:"enabled"`
	Vectors int  `json:"vectors"`
	Chunks  int  `json:"chunks"`
	// FromSnapshot: the graph was loaded from the snapshot at start rather
	// than rebuilt.
	FromSnapshot bool `json:"from_snapshot"`
}

// Vectors reports the vector index's coverage.
func (k *KB) Vectors() VectorStats {
	s := VectorStats{Enabled: k.vec != nil, Chunks: k.lex.Len(), FromSnapshot: k.snapLoaded}
	if k.vec != nil {
		s.Vectors = k.vec.Len()
	}
	return s
}

// The vector index's graph takes minutes to rebuild at 100k chunks, so a
// clean Close saves it to Config.IndexDir and the next Open loads it — but
// only when it holds exactly the chunk ids Pebble has vectors for, under the
// same model. Anything else (no file, a crash since, a damaged file) means
// a rebuild from Pebble, which is always correct.
const (
	vectorSnapFile = "vectors.snap"
	vectorMetaFile = "vectors.meta"
)

type vectorSnapMeta struct {
	ModelID string `json:"model_id"`
	Count   int    `json:"count"`
	IDsHash string `json:"ids_sha256"`
}

func idsHash(ids []string) string {
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadVectorSnapshot replaces the empty index with the saved one when it
// matches stored exactly.
func (k *KB) loadVectorSnapshot(ids []string) bool {
	if k.cfg.IndexDir == "" {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(k.cfg.IndexDir, vectorMetaFile))
	if err != nil {
		return false
	}
	var meta vectorSnapMeta
	if json.Unmarshal(raw, &meta) != nil || meta.ModelID != k.cfg.ModelID || meta.Count != len(ids) || meta.IDsHash != idsHash(ids) {
		k.log.Info("vector index snapshot is stale; rebuilding from stored vectors")
		return false
	}
	f, err := os.Open(filepath.Join(k.cfg.IndexDir, vectorSnapFile))
	if err != nil {
		return false
	}
	defer f.Close()
	fresh := index.NewVector(k.vec.Dim(), index.VectorOptions{})
	if err := fresh.Load(bufio.NewReaderSize(f, 1<<20)); err != nil || fresh.Len() != len(ids) {
		k.log.Warn("vector index snapshot unusable; rebuilding from stored vectors", zap.Error(err))
		return false
	}
	k.vec = fresh
	k.hyb.Vec = fresh
	k.snapLoaded = true
	return true
}

// saveVectorSnapshot writes the index and its description atomically
// (temporary files, fsync, rename, directory fsync). The meta file is
// written last: without it the snapshot is never trusted.
func (k *KB) saveVectorSnapshot() error {
	if k.cfg.IndexDir == "" || k.vec == nil {
		return nil
	}
	if err := os.MkdirAll(k.cfg.IndexDir, 0o750); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(k.cfg.IndexDir, vectorMetaFile))
	ids := k.vec.IDs()
	meta, _ := json.Marshal(vectorSnapMeta{ModelID: k.cfg.ModelID, Count: len(ids), IDsHash: idsHash(ids)})
	write := func(name string, fill func(w io.Writer) error) error {
		tmp := filepath.Join(k.cfg.IndexDir, name+".tmp")
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		err = fill(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, filepath.Join(k.cfg.IndexDir, name))
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
		return err
	}
	if err := write(vectorSnapFile, k.vec.Save); err != nil {
		return err
	}
	if err := write(vectorMetaFile, func(w io.Writer) error { _, err := w.Write(meta); return err }); err != nil {
		return err
	}
	if d, err := os.Open(k.cfg.IndexDir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
