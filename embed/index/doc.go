// Package index holds the knowledge base's retrieval indexes: a BM25 lexical
// index (Lexical), an HNSW vector index over L2-normalised embeddings
// (Vector), and their reciprocal-rank fusion (Hybrid). Search results are
// chunk ids with scores; Filter lets the caller hide chunks the user may not
// see, and is applied before the top k are chosen, so hidden chunks never
// take a slot.
//
// The indexes are derived state. They live in memory and own no storage: the
// ingestion code feeds them chunks read from Pebble at start, and may save a
// snapshot (Save) to start faster next time. Load refuses anything it cannot
// trust — truncated, bit-flipped, another version or another dimension —
// with ErrCorrupt and leaves the index as it was; the caller then rebuilds
// from Pebble. Nothing here is fatal to the process, and nothing here
// imports persistence.
//
// Concurrency: Lexical and Vector are safe for any number of concurrent
// readers (Search, Len, Save) alongside writers (Add, Remove, Load); writers
// are serialised. Each index guards its state with a sync.RWMutex, so a
// search sees an index either before or after a write, never halfway. A
// Filter is called during Search with the index read-locked: it must be
// cheap and must not write to the index it filters. When removals have left
// a third of a Vector's graph as tombstones, the writer that crossed the line
// rebuilds the graph; readers keep searching the old graph until the new one
// is swapped in. Hybrid holds no state of its own. The package starts no
// goroutines.
package index

// Hit is one search result: a chunk id and its score (higher is better).
// Scores are comparable only within one result list: BM25 for Lexical,
// cosine similarity for Vector, fused reciprocal rank for Hybrid.
type Hit struct {
	ID    string
	Score float64
}

// Filter reports whether the caller may see the chunk with this id.
type Filter func(id string) bool
