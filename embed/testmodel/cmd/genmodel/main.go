// Command genmodel writes a random-weight BERT model, the all-MiniLM-L6-v2
// tokenizer and a config.json into a directory (see package testmodel):
//
//	go run ./embed/testmodel/cmd/genmodel -preset tiny|minilm -out DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/faultmaven/faultmaven/embed/testmodel"
)

var presets = map[string]testmodel.Config{
	"tiny":   testmodel.Tiny,
	"minilm": testmodel.MiniLMShape,
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genmodel:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("genmodel", flag.ContinueOnError)
	preset := fs.String("preset", "tiny", "model shape: tiny (tests) or minilm (the compute of all-MiniLM-L6-v2, for benchmarks)")
	out := fs.String("out", "", "directory to write model.onnx, tokenizer.json and config.json into (required)")
	seed := fs.Int64("seed", 0, "seed of the random weights; 0 keeps the preset's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, ok := presets[*preset]
	if !ok {
		return fmt.Errorf("-preset %q: want tiny or minilm", *preset)
	}
	if *out == "" {
		return fmt.Errorf("-out is required: the directory to write the model into")
	}
	if *seed != 0 {
		c.Seed = *seed
	}
	start := time.Now()
	if err := testmodel.Generate(*out, c); err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(*out, "model.onnx"))
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s, %.1f MB) in %s\n", *out, *preset, float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))
	return nil
}
