// Package testmodel writes a small BERT-architecture ONNX model with random
// weights, so that tests and benchmarks can run real embedding backends
// (ONNX Runtime, hugot's pure-Go backend) without downloading trained weights.
//
// The model is an ordinary BERT encoder: word, position and token-type
// embeddings, then Layers blocks of multi-head self-attention and a GELU
// feed-forward network, each followed by a residual connection and
// LayerNorm. Its output last_hidden_state is what sentence-transformers models
// such as all-MiniLM-L6-v2 return before mean pooling. The weights carry no
// meaning: similarities between its embeddings say nothing about the texts,
// only that the plumbing around a model works and how fast it runs.
//
// Generate puts the model beside the real all-MiniLM-L6-v2 tokenizer, found
// in the Go module cache (see TokenizerModule), so a generated directory
// looks like a downloaded sentence-transformers export. TestDir does this
// once per process for tests.
//
// Everything here is deterministic for a given Config on a given
// architecture. Functions are safe for concurrent use; nothing here starts
// goroutines or touches files outside the directory it is given, the Go module
// cache (through "go mod download") and, for TestDir, the user cache
// directory.
package testmodel
