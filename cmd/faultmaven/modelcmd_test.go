package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/embed/model"
	"github.com/faultmaven/faultmaven/embed/testmodel"
)

// fakeHub serves a model repository the way the Hugging Face hub API does
// (repository info, then HEAD + GET of each file with an ETag), from the
// generated test model, so that `model pull` runs hugot's real downloader
// over loopback.
func fakeHub(t *testing.T, repo string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	src := testmodel.TestDir(t)
	files := map[string]string{ // path in the repository → local file
		"onnx/model.onnx": filepath.Join(src, "model.onnx"),
		"tokenizer.json":  filepath.Join(src, "tokenizer.json"),
		"config.json":     filepath.Join(src, "config.json"),
	}
	var downloads atomic.Int64
	const sha = "0123456789abcdef0123456789abcdef01234567"
	mux := http.NewServeMux()
	mux.HandleFunc("/api/models/"+repo+"/revision/main", func(w http.ResponseWriter, _ *http.Request) {
		var siblings []map[string]string
		for name := range files {
			siblings = append(siblings, map[string]string{"rfilename": name})
		}
		// A second ONNX export, as real repositories have: pull must pick
		// the one asked for.
		siblings = append(siblings, map[string]string{"rfilename": "onnx/model_qint8_avx512.onnx"})
		_ = json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": sha, "siblings": siblings})
	})
	mux.HandleFunc("/"+repo+"/resolve/"+sha+"/", func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/"+repo+"/resolve/"+sha+"/")
		local, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		body, err := os.ReadFile(local)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sum := sha256.Sum256(body)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
		w.Header().Set("X-Repo-Commit", sha)
		if r.Method == http.MethodGet {
			downloads.Add(1)
		}
		http.ServeContent(w, r, filepath.Base(name), time.Time{}, bytes.NewReader(body))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &downloads
}

func TestModelPullFromAHubAndCheck(t *testing.T) {
	const repo = "acme/tiny-embedder"
	hub, downloads := fakeHub(t, repo)
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the downloader's own cache
	data := t.TempDir()

	out, _, err := runCmd(t, env(nil), "", "model", "pull", "--data", data, repo)
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	dir := filepath.Join(data, "models", "acme_tiny-embedder")
	if !strings.Contains(out, "model ready in "+dir) {
		t.Fatalf("pull output:\n%s", out)
	}
	if downloads.Load() != 3 {
		t.Fatalf("%d files downloaded, want 3 (model, tokenizer, config)", downloads.Load())
	}
	if _, err := model.Inspect(dir, ""); err != nil {
		t.Fatalf("pulled directory is not a usable model: %v", err)
	}

	out, _, err = runCmd(t, env(nil), "", "model", "check", "--data", data, "--embed-model", repo,
		"--embed-backend", "ort", "--ort-lib", testmodel.ORTLib(t))
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{"backend=ort", "dim=32", "max_tokens=128", "model=acme_tiny-embedder@"} {
		if !strings.Contains(out, want) {
			t.Fatalf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestModelPullRefusesBadInput(t *testing.T) {
	for _, repo := range []string{"../../etc", "no-slash", "a/b/c", "owner/../x", "owner/.git", "own er/x"} {
		if _, _, err := runCmd(t, env(nil), "", "model", "pull", "--data", t.TempDir(), repo); err == nil || !strings.Contains(err.Error(), "owner/name") {
			t.Errorf("pull %q: err = %v, want a refusal naming owner/name", repo, err)
		}
	}
	// A hub that does not have the repository: a clear error, quickly (no
	// long retry loop), and nothing left in models/.
	hub := httptest.NewServer(http.NotFoundHandler())
	defer hub.Close()
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	data := t.TempDir()
	_, _, err := runCmd(t, env(nil), "", "model", "pull", "--data", data, "acme/missing")
	if err == nil || !strings.Contains(err.Error(), "acme/missing") {
		t.Fatalf("missing repository: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "models", "acme_missing", "model.onnx")); err == nil {
		t.Fatal("a failed pull left a model behind")
	}
	if _, _, err := runCmd(t, env(nil), "", "model", "check", "--data", data); err == nil || !strings.Contains(err.Error(), "model pull") {
		t.Fatalf("check without a model: err = %v, want advice to pull", err)
	}
}
