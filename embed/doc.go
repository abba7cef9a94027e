// Package embed will own local text embeddings (hugot and ONNX Runtime
// backends behind one Embedder interface), the pool of embedding actors and
// knowledge-base ingestion. Nothing is implemented yet: see the open
// knowledge-base issue.
package embed
