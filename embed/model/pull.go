package model

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gomlx/go-huggingface/hub"
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
}

// pullExtras are the small files a model directory may use besides the
// ONNX file and tokenizer.json.
var pullExtras = map[string]bool{"config.json": true, "special_tokens_map.json": true, "tokenizer_config.json": true, "vocab.txt": true}

// Pull downloads repo's ONNX model, tokenizer.json and configuration from
// Hugging Face (or HF_ENDPOINT) into modelsDir/DirName(repo) and checks the
// result is usable. It selects files the way hugot's downloader does and
// uses the hub client that downloader is built on (gomlx/go-huggingface),
// but one file at a time: hugot's DownloadModel fetches files on parallel
// goroutines that update shared counters without synchronisation (the race
// detector reports it). Files land in a private cache under modelsDir and
// the finished directory is renamed into place, so a failed or interrupted
// pull never leaves a half model where the server would look.
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
	work, err := os.MkdirTemp(modelsDir, ".pull-")
	if err != nil {
		return "", fmt.Errorf("model pull: %w", err)
	}
	defer os.RemoveAll(work)
	r := hub.New(repo).WithCacheDir(filepath.Join(work, "cache")).WithProgressBar(false)
	r.Verbosity = 0
	if o.AuthToken != "" {
		r = r.WithAuth(o.AuthToken)
	}
	if err := r.DownloadInfo(false); err != nil {
		return "", fmt.Errorf("model pull %s: repository information: %w", repo, err)
	}
	var files []string
	var onnx, tokenizer bool
	for name, err := range r.IterFileNames() {
		if err != nil {
			return "", fmt.Errorf("model pull %s: %w", repo, err)
		}
		switch {
		case name == o.OnnxFile:
			onnx = true
			files = append(files, name)
		case name == "tokenizer.json":
			tokenizer = true
			files = append(files, name)
		case pullExtras[name]:
			files = append(files, name)
		}
	}
	if !onnx {
		return "", fmt.Errorf("model pull %s: the repository has no %s (choose another with --onnx-file)", repo, o.OnnxFile)
	}
	if !tokenizer {
		return "", fmt.Errorf("model pull %s: the repository has no tokenizer.json", repo)
	}
	stage := filepath.Join(work, "model")
	if err := os.Mkdir(stage, 0o750); err != nil {
		return "", fmt.Errorf("model pull: %w", err)
	}
	for _, name := range files {
		got, err := r.DownloadFile(name)
		if err != nil {
			return "", fmt.Errorf("model pull %s: %s: %w", repo, name, err)
		}
		real, err := filepath.EvalSymlinks(got)
		if err != nil {
			return "", fmt.Errorf("model pull %s: %w", repo, err)
		}
		if err := os.Rename(real, filepath.Join(stage, path.Base(name))); err != nil {
			return "", fmt.Errorf("model pull %s: %w", repo, err)
		}
	}
	if _, err := Inspect(stage, ""); err != nil {
		return "", fmt.Errorf("model pull %s: downloaded, but not usable: %w", repo, err)
	}
	dir := filepath.Join(modelsDir, DirName(repo))
	old := dir + ".old"
	_ = os.RemoveAll(old)
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return "", fmt.Errorf("model pull: replace %s: %w", dir, err)
		}
	}
	if err := os.Rename(stage, dir); err != nil {
		_ = os.Rename(old, dir)
		return "", fmt.Errorf("model pull: %w", err)
	}
	_ = os.RemoveAll(old)
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
