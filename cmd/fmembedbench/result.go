package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// result is what one step writes as JSON and the report reads. The Node
// script writes the same fields.
type result struct {
	Kind    string `json:"kind"`    // "embed" or "ingest"
	Name    string `json:"name"`    // the row, e.g. "go-ort-t1"
	Runtime string `json:"runtime"` // "go" or "node"
	Backend string `json:"backend"` // hugot, ort or none
	Threads int    `json:"threads,omitempty"`
	// Tokenization is "included" when the timings contain it (Go) and
	// "excluded" when the step was given token ids (Node).
	Tokenization string  `json:"tokenization,omitempty"`
	LoadAverage  float64 `json:"load_average"` // one-minute, at the start
	PeakRSSMiB   float64 `json:"peak_rss_mib"` // VmHWM of the step's process
	// OthersCores is the CPU the rest of the machine used while the step
	// ran, in cores; QuietWaitSeconds is how long the step waited for a
	// quiet machine first. Both are added by the all command.
	OthersCores      float64 `json:"others_cores"`
	QuietWaitSeconds float64 `json:"quiet_wait_seconds"`

	// embed
	Texts        int       `json:"texts,omitempty"` // per throughput pass
	Batch        int       `json:"batch,omitempty"`
	PassRates    []float64 `json:"pass_rates,omitempty"` // embeddings/s of each pass
	EmbedsPerSec float64   `json:"embeddings_per_second,omitempty"`
	CPUCores     float64   `json:"cpu_cores,omitempty"` // CPU time / wall time over the passes
	Singles      int       `json:"singles,omitempty"`
	SingleP50Ms  float64   `json:"single_p50_ms,omitempty"`
	SingleP99Ms  float64   `json:"single_p99_ms,omitempty"`
	LoadSeconds  float64   `json:"load_seconds,omitempty"` // open + warm-up
	Dim          int       `json:"dim,omitempty"`
	// MinCosine and MaxAbsDiff compare this step's vectors with the ort
	// reference run's, text by text.
	MinCosine  *float64 `json:"min_cosine,omitempty"`
	MaxAbsDiff *float64 `json:"max_abs_diff,omitempty"`

	// ingest
	Copies       int     `json:"copies,omitempty"`
	KBWorkers    int     `json:"kb_workers,omitempty"`
	Documents    int     `json:"documents,omitempty"`
	Chunks       int     `json:"chunks,omitempty"`
	Vectors      int     `json:"vectors,omitempty"`
	Seconds      float64 `json:"seconds,omitempty"`
	DocsPerSec   float64 `json:"documents_per_second,omitempty"`
	ChunksPerSec float64 `json:"chunks_per_second,omitempty"`
}

func writeResult(path string, r *result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func readResult(path string) (*result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Name == "" || (r.Kind != "embed" && r.Kind != "ingest") {
		return nil, fmt.Errorf("%s: not a result (name %q, kind %q)", path, r.Name, r.Kind)
	}
	return &r, nil
}
