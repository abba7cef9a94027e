package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/faultmaven/faultmaven/embed/model"
)

const modelUsage = `Usage:
  faultmaven model pull [--data DIR] [--onnx-file onnx/model.onnx] [--hf-token T] [owner/name]
  faultmaven model check [--data DIR | --embed-model-dir DIR] [--embed-backend auto|hugot|ort] [--ort-lib PATH]

pull downloads a sentence-embedding model (ONNX file, tokenizer.json, config) from
Hugging Face into <data>/models/<owner>_<name>, where 'faultmaven serve' finds it;
the directory appears only when the download is complete. The default is ` + model.DefaultRepo + `.
HF_ENDPOINT points the download at a mirror. For machines without internet, copy a
model directory over and set FM_EMBED_MODEL_DIR instead.

check loads the model the server would use, embeds a test sentence and prints
the backend, dimension and model id.
`

func runModel(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stdout, modelUsage)
		if len(args) == 0 {
			return errors.New("missing model command (pull or check)")
		}
		return nil
	}
	switch args[0] {
	case "pull":
		return runModelPull(args[1:], getenv, stdout)
	case "check":
		return runModelCheck(ctx, args[1:], getenv, stdout)
	}
	fmt.Fprint(stderr, modelUsage)
	return fmt.Errorf("unknown model command %q (pull or check)", args[0])
}

func runModelPull(args []string, getenv func(string) string, stdout io.Writer) error {
	var data, onnxFile, token string
	fs := flag.NewFlagSet("model pull", flag.ContinueOnError)
	fs.StringVar(&data, "data", "./data", "data directory; the model goes to <data>/models")
	fs.StringVar(&onnxFile, "onnx-file", model.DefaultOnnxFile, "ONNX file inside the repository")
	fs.StringVar(&token, "hf-token", "", "Hugging Face token for gated repositories (prefer FM_HF_TOKEN)")
	flags, rest := splitArgs(args)
	if err := parseFlags(fs, flags, getenv, stdout); err != nil {
		return err
	}
	repo := model.DefaultRepo
	switch len(rest) {
	case 0:
	case 1:
		repo = rest[0]
	default:
		return fmt.Errorf("model pull takes one repository, got %d", len(rest))
	}
	if err := model.ValidRepo(repo); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pulling %s (%s) into %s\n", repo, onnxFile, filepath.Join(data, "models"))
	dir, err := model.Pull(repo, filepath.Join(data, "models"), model.PullOptions{OnnxFile: onnxFile, AuthToken: token})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model ready in %s\n", dir)
	return nil
}

func runModelCheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var data, dir, backend, lib, repo string
	fs := flag.NewFlagSet("model check", flag.ContinueOnError)
	fs.StringVar(&data, "data", "./data", "data directory whose <data>/models is searched")
	fs.StringVar(&dir, "embed-model-dir", "", "model directory (overrides --data and --embed-model)")
	fs.StringVar(&repo, "embed-model", model.DefaultRepo, "model pulled into <data>/models")
	fs.StringVar(&backend, "embed-backend", "auto", "auto, hugot or ort")
	fs.StringVar(&lib, "ort-lib", "", "libonnxruntime.so for the ort backend")
	flags, rest := splitArgs(args)
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	if err := parseFlags(fs, flags, getenv, stdout); err != nil {
		return err
	}
	b, err := model.ParseBackend(backend)
	if err != nil {
		return err
	}
	found, err := model.Locate(dir, filepath.Join(data, "models"), repo)
	if err != nil {
		return err
	}
	if found == "" {
		return fmt.Errorf("no embedding model in %s: run 'faultmaven model pull %s'", filepath.Join(data, "models"), repo)
	}
	m, err := model.Open(model.Config{Dir: found, Backend: b, ORTLib: lib})
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := m.Embed(ctx, []string{"disk full on /var"}); err != nil {
		return err
	}
	i := m.Info()
	fmt.Fprintf(stdout, "model=%s\ndir=%s\nbackend=%s (%s)\ndim=%d\nmax_tokens=%d\n", i.ID, i.Dir, i.Backend, i.Why, i.Dim, i.MaxTokens)
	return nil
}
