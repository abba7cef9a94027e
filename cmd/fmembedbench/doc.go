// Command fmembedbench is test tooling, not part of the product: the
// embedding benchmarks of issue 4 (docs/benchmarks.md, "Embeddings").
//
//	go run ./cmd/fmembedbench all -model .cache/testmodel/minilm -corpus testdata/kb/runbooks
//
// "all" runs every step below as a separate process (so each has its own
// peak RSS and its own ONNX Runtime environment, which is process-global),
// once per -runs, and prints one table with medians over the runs:
//
//   - texts: cuts a fixed set of chunk texts out of the runbook corpus and
//     tokenizes them with the tokenizer the ort backend uses; the ids are
//     what the Node script feeds its model, since Node has no tokenizer
//     here.
//   - embed: one Go backend (hugot or ort) on those texts: embeddings/s in
//     batches of 32 and single-text latency after warm-up. The ort run
//     writes its vectors; later runs compare theirs with them.
//   - node: embed/model/bench/node_embed.js, the same model and token ids
//     through Node's onnxruntime-node (tokenization excluded).
//   - ingest: the corpus, optionally replicated, uploaded into a fresh
//     knowledge base on a temporary directory, with no embedder or with a
//     model behind the embedding pool, until every document is ready.
//   - report: the table, from the JSON every step wrote.
//
// Bounds: fixed numbers of texts, passes, single calls and documents; each
// step's subprocess is killed after -step-timeout. Temporary directories
// are removed on exit.
//
// Must not: be shipped, imported or started by the product.
package main
