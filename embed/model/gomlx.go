package model

import (
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// hugot asks GoMLX for the pure-Go backend by name ("go") with no options.
// By default that backend runs independent graph ops of one execution on
// parallel goroutines, and that mode reads and recycles buffers without the
// synchronisation the race detector demands (it reports data races inside
// simplego's executor under `go test -race`). We re-register "go" so that
// every backend hugot creates runs its ops sequentially; large matrix
// products still use simplego's worker pool. On the generated test model
// hugot's vectors match ONNX Runtime's to cosine 1.0 in both modes. See
// docs/adr/0005.
func init() {
	backends.Register(simplego.BackendName, func(config string) (backends.Backend, error) {
		if config == "" {
			return simplego.New("ops_sequential")
		}
		if !strings.Contains(config, "ops_") {
			config = "ops_sequential," + config
		}
		return simplego.New(config)
	})
}
