package embed

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	have := map[string]int{}
	bad := 0
	err = k.ks.Scan([]byte(prefixVec), false, func(key, v []byte) error {
		docID, n, ok := splitVecKey(key)
		m, known := k.docs[docID]
		if !ok || !known || m.doc.Status != StatusReady || n >= m.doc.Chunks {
			return nil
		}
		vec, ok := decodeVec(v, dim)
		if !ok {
			bad++
			return nil
		}
		if k.vec.Add(ChunkID(docID, n), vec) == nil {
			have[docID]++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embed: load vectors: %w", err)
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
}

// Vectors reports the vector index's coverage.
func (k *KB) Vectors() VectorStats {
	s := VectorStats{Enabled: k.vec != nil, Chunks: k.lex.Len()}
	if k.vec != nil {
		s.Vectors = k.vec.Len()
	}
	return s
}
