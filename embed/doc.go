// Package embed owns the knowledge base: documents and their metadata,
// text extraction (markdown, text, HTML, JSON, YAML, CSV, logs, and PDF
// through PDFium compiled to WebAssembly, pdf.go), heading-aware
// chunking, durable ingestion jobs and scoped search over the chunks.
// Retrieval itself lives in embed/index (BM25 today; vectors are fused in by
// reciprocal rank once an embedder feeds them).
//
// Storage: everything durable is in the "kb" keyspace (documents, chunks,
// extracted text, jobs, dedupe entries; see the key layout in kb.go) and the
// blob store (the uploaded bytes, by SHA-256). The index is derived state,
// rebuilt from the chunk keys at Open. An upload writes its blob, document
// and job before returning; a worker later writes all chunks, the ready
// status and the job's removal in one synced batch, so a crash at any point
// leaves a document either pending (and resumed at the next Open) or
// completely indexed, never half.
//
// Visibility: global documents are visible to everyone and changed by
// admins only; user documents to their owner only (admins included: they
// are private notes); case documents to the viewers of that case. Search
// applies these rules inside the index filter, before the top k are chosen.
//
// Concurrency: KB methods are safe for concurrent use. Open starts
// Config.Workers goroutines, owned by the KB and waited for by Close. The
// only other goroutines are the PDF engine's: a worker extracting a PDF
// runs it on one goroutine and waits at most pdfTimeout for it; a stopped
// run's goroutine ends when the engine aborts it. One RWMutex orders document, chunk and index
// changes (always taken before the index's own lock), so a delete and a
// finishing job never interleave.
//
// embed is a storage module: it must not import actors, gateway or
// actors/evidence (persistence/arch_test.go). It reaches Pebble only through
// persistence.Keyspace and persistence.BlobStore.
package embed
