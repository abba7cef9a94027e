package embed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// concepts is an embedder for the fusion plumbing: each vector axis is a
// concept and a text scores on every axis whose words it contains, so
// "outage" and "downtime" land together although they share no letters —
// something only the vector side can find. The real models are exercised
// in embed/model; this one makes the expected ranking knowable.
type concepts struct {
	calls atomic.Int64
	texts atomic.Int64
	fail  atomic.Bool
}

var conceptAxes = [][]string{
	{"outage", "downtime", "unavailable"},
	{"certificate", "tls", "x509"},
	{"memory", "oom", "heap"},
	{"disk", "inode", "filesystem"},
}

func (c *concepts) Dim() int { return len(conceptAxes) + 1 }

func (c *concepts) Embed(_ context.Context, texts []string) ([][]float32, error) {
	c.calls.Add(1)
	c.texts.Add(int64(len(texts)))
	if c.fail.Load() {
		return nil, errors.New("model unavailable")
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, c.Dim())
		v[len(conceptAxes)] = 0.01 // never the zero vector
		lower := strings.ToLower(t)
		for a, words := range conceptAxes {
			for _, w := range words {
				if strings.Contains(lower, w) {
					v[a]++
				}
			}
		}
		out[i] = v
	}
	return out, nil
}

func TestVectorsFindWhatWordsCannot(t *testing.T) {
	emb := &concepts{}
	e := newEnv(t, Config{Embedder: emb, ModelID: "concepts-v1"})
	down := e.upload(Upload{Title: "Regional downtime runbook", Filename: "down.md", Scope: ScopeGlobal, Admin: true},
		"# Regional downtime runbook\n\nWhen the region is unavailable, fail over traffic.\n")
	heap := e.upload(Upload{Title: "JVM heap pressure", Filename: "heap.md", Scope: ScopeGlobal, Admin: true},
		"# JVM heap pressure\n\nRaise -Xmx when the collector cannot keep up.\n")
	e.wait()
	if st := e.kb.Vectors(); !st.Enabled || st.Vectors != st.Chunks || st.Vectors == 0 {
		t.Fatalf("vector stats %+v: every chunk must have a vector", st)
	}
	// "outage" appears in no document: only the vector side can match it.
	res := e.search(alice, "outage")
	if len(res) == 0 || res[0].DocumentID != down.DocumentID {
		t.Fatalf("search 'outage' = %v, want the downtime runbook first", titles(res))
	}
	if hasDoc(res[:1], heap.DocumentID) {
		t.Fatal("unrelated document ranked first")
	}

	// Without an embedder the same query finds nothing: the lexical side
	// alone cannot.
	e.cfg = Config{}
	e.reopen()
	if res := e.search(alice, "outage"); len(res) != 0 {
		t.Fatalf("lexical-only search for 'outage' = %v, want nothing", titles(res))
	}
}

func TestVectorsPersistAndFollowTheModel(t *testing.T) {
	emb := &concepts{}
	e := newEnv(t, Config{Embedder: emb, ModelID: "concepts-v1"})
	d := e.upload(Upload{Title: "Disk full", Filename: "disk.md"}, "# Disk full\n\nThe filesystem ran out of inodes.\n")
	e.wait()
	chunks := e.kb.Vectors().Chunks
	if got := e.countKeys(prefixVec); got != chunks || chunks == 0 {
		t.Fatalf("stored vectors = %d, want one per chunk (%d)", got, chunks)
	}

	// A restart with the same model reuses the stored vectors.
	before := emb.texts.Load()
	e.reopen()
	e.wait()
	if got := emb.texts.Load(); got != before {
		t.Fatalf("restart re-embedded %d texts; stored vectors must be reused", got-before)
	}
	if st := e.kb.Vectors(); st.Vectors != chunks {
		t.Fatalf("after restart: %+v, want %d vectors", st, chunks)
	}

	// Another model: the old vectors are dropped and every chunk embedded again.
	e.cfg.ModelID = "concepts-v2"
	e.reopen()
	e.wait()
	if got := emb.texts.Load() - before; got != int64(chunks) {
		t.Fatalf("model change re-embedded %d texts, want %d", got, chunks)
	}
	if st := e.kb.Vectors(); st.Vectors != chunks {
		t.Fatalf("after model change: %+v", st)
	}
	if res := e.search(alice, "inode exhaustion"); !hasDoc(res, d.DocumentID) {
		t.Fatal("document lost after re-embedding")
	}

	// Deleting the document removes its vectors from Pebble and the index.
	if err := e.kb.Delete(context.Background(), alice, d.DocumentID); err != nil {
		t.Fatal(err)
	}
	if got := e.countKeys(prefixVec); got != 0 {
		t.Fatalf("%d vectors left after delete", got)
	}
	if st := e.kb.Vectors(); st.Vectors != 0 {
		t.Fatalf("index still holds %d vectors after delete", st.Vectors)
	}
}

func TestEmbedderFailureLeavesDocumentSearchableAndIsRepaired(t *testing.T) {
	emb := &concepts{}
	emb.fail.Store(true)
	e := newEnv(t, Config{Embedder: emb, ModelID: "concepts-v1"})
	d := e.upload(Upload{Title: "Certificate expiry", Filename: "cert.md"}, "# Certificate expiry\n\nRenew the x509 certificate.\n")
	e.wait()
	got, _, err := e.kb.Get(context.Background(), alice, d.DocumentID)
	if err != nil || got.Status != StatusReady {
		t.Fatalf("document %+v, %v: want ready although embedding failed", got, err)
	}
	if res := e.search(alice, "renew certificate"); !hasDoc(res, d.DocumentID) {
		t.Fatal("lexical search must still find it")
	}
	if st := e.kb.Vectors(); st.Vectors != 0 {
		t.Fatalf("vectors %+v, want none", st)
	}
	// The model comes back: the next start embeds what was missed.
	emb.fail.Store(false)
	e.reopen()
	e.wait()
	if st := e.kb.Vectors(); st.Vectors != st.Chunks || st.Chunks == 0 {
		t.Fatalf("after restart: %+v, want every chunk embedded", st)
	}
	if res := e.search(alice, "tls"); !hasDoc(res, d.DocumentID) {
		t.Fatal("vector search must find the repaired document")
	}
}

func TestVectorSearchNeverShowsOtherUsersDocuments(t *testing.T) {
	emb := &concepts{}
	e := newEnv(t, Config{Embedder: emb, ModelID: "concepts-v1"})
	private := e.upload(Upload{Owner: "alice", Title: "Alice heap notes", Filename: "a.md"}, "# Heap\n\nOOM killer notes.\n")
	e.wait()
	if res := e.search(alice, "memory"); !hasDoc(res, private.DocumentID) {
		t.Fatal("owner must find her document by vector")
	}
	if res := e.search(bob, "memory"); hasDoc(res, private.DocumentID) {
		t.Fatal("bob found alice's private document through the vector index")
	}
}

func titles(res []Result) []string {
	var out []string
	for _, r := range res {
		out = append(out, r.Title)
	}
	return out
}

func TestVectorSnapshotSkipsTheRebuildOnlyWhenItMatches(t *testing.T) {
	emb := &concepts{}
	idx := t.TempDir()
	e := newEnv(t, Config{Embedder: emb, ModelID: "concepts-v1", IndexDir: idx})
	keep := e.upload(Upload{Title: "Disk full", Filename: "disk.md"}, "# Disk full\n\nThe filesystem ran out of inodes.\n")
	gone := e.upload(Upload{Title: "Heap", Filename: "heap.md"}, "# Heap\n\nOOM killer.\n")
	e.wait()
	if e.kb.Vectors().FromSnapshot {
		t.Fatal("a fresh knowledge base cannot come from a snapshot")
	}

	// A clean restart loads the graph saved by Close.
	e.reopen()
	st := e.kb.Vectors()
	if !st.FromSnapshot || st.Vectors != st.Chunks {
		t.Fatalf("after a clean restart: %+v, want the snapshot with every vector", st)
	}
	if res := e.search(alice, "memory"); !hasDoc(res, gone.DocumentID) {
		t.Fatal("vector search from the snapshot lost a document")
	}

	// A change that no Close saved (a crash): the snapshot no longer
	// matches Pebble and is not trusted. The crash is simulated by putting
	// the snapshot from before the change back after Close.
	old := map[string][]byte{}
	for _, f := range []string{vectorSnapFile, vectorMetaFile} {
		b, err := os.ReadFile(filepath.Join(idx, f))
		if err != nil {
			t.Fatal(err)
		}
		old[f] = b
	}
	if err := e.kb.Delete(context.Background(), alice, gone.DocumentID); err != nil {
		t.Fatal(err)
	}
	e.close()
	for f, b := range old {
		if err := os.WriteFile(filepath.Join(idx, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.open()
	st = e.kb.Vectors()
	if st.FromSnapshot || st.Vectors != st.Chunks {
		t.Fatalf("after a crash: %+v, want a rebuild from Pebble", st)
	}
	if res := e.search(alice, "memory"); hasDoc(res, gone.DocumentID) {
		t.Fatal("a stale snapshot brought a deleted document back")
	}
	if res := e.search(alice, "inode"); !hasDoc(res, keep.DocumentID) {
		t.Fatal("rebuild lost a document")
	}

	// A damaged snapshot is rebuilt from Pebble, never fatal.
	e.close() // saves a good snapshot
	snap := filepath.Join(idx, vectorSnapFile)
	raw, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(snap, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	e.open()
	if st := e.kb.Vectors(); st.FromSnapshot || st.Vectors != st.Chunks || st.Vectors == 0 {
		t.Fatalf("after damage: %+v, want a rebuild", st)
	}

	// Another model: the snapshot (made under the old one) is ignored.
	e.close()
	e.cfg.ModelID = "concepts-v2"
	e.open()
	e.wait()
	if st := e.kb.Vectors(); st.FromSnapshot || st.Vectors != st.Chunks {
		t.Fatalf("after a model change: %+v", st)
	}
}
