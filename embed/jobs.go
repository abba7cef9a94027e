package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/persistence"
)

// process runs the ingestion job of one document: extract, chunk, then
// write every chunk, the text, the document (ready) and the job's removal in
// one synced batch, and only then index the chunks. A crash before the
// commit leaves the job to be redone from scratch; a re-run overwrites the
// same chunk keys, so it never duplicates. A job whose document was deleted
// meanwhile is dropped.
func (k *KB) process(ctx context.Context, id string) error {
	raw, err := k.ks.Get(jobKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		// No job: deleted, done, or a ready document queued to get vectors.
		if k.vec != nil {
			return k.backfillVectors(ctx, id)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("load job: %w", err)
	}
	var j job
	if err := json.Unmarshal(raw, &j); err != nil {
		return k.finish(id, nil, nil, "", fmt.Errorf("corrupt job record: %v", err))
	}
	text, chunks, perr := k.prepare(j)
	if err := ctx.Err(); err != nil {
		return err // closing: leave the job for the next Open
	}
	var vecs [][]float32
	if perr == nil && k.vec != nil {
		k.mu.RLock()
		title := ""
		if m, ok := k.docs[id]; ok {
			title = m.doc.Title
		}
		k.mu.RUnlock()
		texts := make([]string, len(chunks))
		for i, c := range chunks {
			texts[i] = storedChunk{Heading: c.Heading, Body: c.Body}.indexText(title)
		}
		vecs, err = k.embedChunks(ctx, texts)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // closing: redo the job at the next Open
			}
			// Searchable lexically now; the next Open embeds it again.
			k.log.Warn("document not embedded; lexical search only until the next start",
				zap.String("document_id", id), zap.Error(err))
			vecs = nil
		}
	}
	return k.finish(id, chunks, vecs, text, perr)
}

// prepare extracts and chunks the document's blob.
func (k *KB) prepare(j job) (string, []chunk, error) {
	f, err := k.blobs.Open(j.Digest)
	if err != nil {
		return "", nil, fmt.Errorf("open stored upload: %w", err)
	}
	defer f.Close()
	text, err := extract(f, j.Format, k.cfg.MaxDocBytes)
	if err != nil {
		return "", nil, err
	}
	chunks := chunkText(text, k.cfg.ChunkChars, k.cfg.Overlap)
	if len(chunks) == 0 {
		return "", nil, fmt.Errorf("%w: no text could be extracted", ErrEmpty)
	}
	return text, chunks, nil
}

// finish commits the outcome of a job and updates the index under k.mu.
func (k *KB) finish(id string, chunks []chunk, vecs [][]float32, text string, failure error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	m, ok := k.docs[id]
	if !ok {
		return k.ks.Delete(jobKey(id), true) // deleted while we worked
	}
	d := m.doc
	d.UpdatedAt = k.cfg.Now().UTC()
	b := k.ks.NewBatch()
	defer b.Close()
	_ = b.DeletePrefix(chunkPrefix(id)) // leftovers of an earlier run with other settings
	_ = b.DeletePrefix(vecPrefix(id))
	stored := make([]storedChunk, len(chunks))
	if failure != nil {
		d.Status, d.Error, d.Chunks = StatusFailed, failure.Error(), 0
	} else {
		d.Status, d.Error, d.Chunks = StatusReady, "", len(chunks)
		for i, c := range chunks {
			stored[i] = storedChunk{DocumentID: id, N: c.N, Heading: c.Heading, Body: c.Body}
			v, _ := json.Marshal(stored[i])
			_ = b.Set(chunkKey(id, c.N), v)
			if vecs != nil {
				_ = b.Set(vecKey(id, c.N), encodeVec(vecs[i]))
			}
		}
		_ = b.Set(textKey(id), []byte(text))
	}
	dj, _ := json.Marshal(d)
	_ = b.Set(docKey(id), dj)
	_ = b.Delete(jobKey(id))
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("commit ingestion of %s: %w", id, err)
	}
	// Replace whatever an earlier run indexed (there is none after a clean
	// start, but a re-run must never leave stale chunk ids behind).
	for n := len(chunks); n < m.doc.Chunks; n++ {
		k.lex.Remove(ChunkID(id, n))
		if k.vec != nil {
			k.vec.Remove(ChunkID(id, n))
		}
	}
	for i, c := range stored {
		if failure != nil {
			break
		}
		k.lex.Add(ChunkID(id, c.N), c.indexText(d.Title))
		if k.vec == nil {
			continue
		}
		if vecs == nil {
			k.vec.Remove(ChunkID(id, c.N))
		} else if err := k.vec.Add(ChunkID(id, c.N), vecs[i]); err != nil {
			k.log.Warn("vector not indexed", zap.String("chunk_id", ChunkID(id, c.N)), zap.Error(err))
		}
	}
	m.doc = d
	if failure != nil {
		k.log.Warn("document ingestion failed", zap.String("document_id", id), zap.Error(failure))
	} else {
		k.log.Debug("document ready", zap.String("document_id", id), zap.Int("chunks", len(chunks)))
	}
	return nil
}
