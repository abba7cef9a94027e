package model

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/knights-analytics/hugot"
)

// DefaultRepo is the model `faultmaven model pull` fetches by default.
const DefaultRepo = "sentence-transformers/all-MiniLM-L6-v2"

// DefaultOnnxFile is where sentence-transformers repositories keep the
// full-precision ONNX export.
const DefaultOnnxFile = "onnx/model.onnx"

// repoName is owner/name as Hugging Face spells it.
var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)

// DirName is the folder under <data>/models a repository is pulled into
// (the downloader's own naming: "/" becomes "_").
func DirName(repo string) string { return strings.ReplaceAll(repo, "/", "_") }

// ValidRepo reports whether repo is an owner/name repository id; it is
// checked before it becomes part of a path.
func ValidRepo(repo string) error {
	if !repoName.MatchString(repo) || strings.Contains(repo, "..") {
		return fmt.Errorf("model repository %q: want owner/name, e.g. %s", repo, DefaultRepo)
	}
	return nil
}

// PullOptions tunes Pull.
type PullOptions struct {
	OnnxFile  string // file in the repository; default DefaultOnnxFile
	AuthToken string // for gated repositories
	Verbose   bool   // progress on stdout
}

// Pull downloads repo's ONNX model, tokenizer and configuration from
// Hugging Face (or HF_ENDPOINT) with hugot's downloader into
// modelsDir/DirName(repo) and checks the result is usable. It returns the
// model directory.
func Pull(repo, modelsDir string, o PullOptions) (string, error) {
	if err := ValidRepo(repo); err != nil {
		return "", err
	}
	if o.OnnxFile == "" {
		o.OnnxFile = DefaultOnnxFile
	}
	if err := os.MkdirAll(modelsDir, 0o750); err != nil {
		return "", fmt.Errorf("model pull: %w", err)
	}
	opts := hugot.NewDownloadOptions()
	opts.OnnxFilePath = o.OnnxFile
	opts.AuthToken = o.AuthToken
	opts.Verbose = o.Verbose
	opts.MaxRetries, opts.RetryInterval = 2, 1
	dir, err := hugot.DownloadModel(repo, modelsDir, opts)
	if err != nil {
		return "", fmt.Errorf("model pull %s: %w", repo, err)
	}
	want := filepath.Join(modelsDir, DirName(repo))
	if filepath.Clean(dir) != filepath.Clean(want) {
		return "", fmt.Errorf("model pull %s: downloaded into %s, expected %s", repo, dir, want)
	}
	if _, err := Inspect(dir, ""); err != nil {
		return "", fmt.Errorf("model pull %s: downloaded, but not usable: %w", repo, err)
	}
	return dir, nil
}

// Locate picks the model directory the server uses: explicit (the
// --embed-model-dir flag or FM_EMBED_MODEL_DIR) when set, which must then
// hold a model; otherwise modelsDir/DirName(repo) if it holds one. An empty
// result with a nil error means "no model": the server runs lexical-only.
func Locate(explicit, modelsDir, repo string) (string, error) {
	if explicit != "" {
		if _, err := Inspect(explicit, ""); err != nil {
			return "", err
		}
		return explicit, nil
	}
	if repo == "" {
		repo = DefaultRepo
	}
	if err := ValidRepo(repo); err != nil {
		return "", err
	}
	dir := filepath.Join(modelsDir, DirName(repo))
	if _, err := os.Stat(dir); err != nil {
		return "", nil
	}
	if _, err := Inspect(dir, ""); err != nil {
		return "", err
	}
	return dir, nil
}
