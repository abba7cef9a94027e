package testmodel

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// generatorVersion changes whenever WriteModel or Generate would write
// different files for the same Config, so TestDir's cache never serves a
// stale model.
const generatorVersion = 1

// EnvTestModelDir names a directory, as written by Generate, that TestDir
// returns instead of generating one.
const EnvTestModelDir = "FM_TEST_MODEL_DIR"

var tiny struct {
	once sync.Once
	dir  string
	err  error
}

// TestDir returns a model directory for tests: $FM_TEST_MODEL_DIR when it is
// set, otherwise the Tiny model, generated at most once per process into the
// user cache directory and reused by later processes. It fails tb when there
// is no model.
func TestDir(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv(EnvTestModelDir); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
			tb.Fatalf("testmodel: %s=%s holds no model (%v); run make testmodel and point it at .cache/testmodel/tiny, or unset it", EnvTestModelDir, dir, err)
		}
		return dir
	}
	tiny.once.Do(func() { tiny.dir, tiny.err = cachedDir(Tiny) })
	if tiny.err != nil {
		tb.Fatalf("testmodel: cannot generate the test model: %v (set %s to a directory written by make testmodel to skip generation)", tiny.err, EnvTestModelDir)
	}
	return tiny.dir
}

// cachedDir returns the directory under the user cache that holds c's
// generated model, generating it when it is missing. Several processes may
// race here (go test runs packages in parallel): each writes a private
// temporary directory and renames it into place, and a loser of the rename
// uses the winner's.
func cachedDir(c Config) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	base = filepath.Join(base, "faultmaven-testmodel")
	key := sha256.Sum256(fmt.Appendf(nil, "%d %s %+v", generatorVersion, TokenizerModule, c))
	dir := filepath.Join(base, hex.EncodeToString(key[:8]))
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(base, ".generating-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := Generate(tmp, c); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "model.onnx")); statErr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("install %s: %w", dir, err)
	}
	return dir, nil
}

// ORTLib returns the ONNX Runtime library for tests: $FM_ORT_LIB, or the
// repository's .cache/ort/libonnxruntime.so.1 where make ort puts it. A
// missing library fails tb with the command that fetches it: the ORT
// tests are never skipped.
func ORTLib(tb testing.TB) string {
	tb.Helper()
	lib := os.Getenv("FM_ORT_LIB")
	if lib == "" {
		root, err := repoRoot()
		if err != nil {
			tb.Fatalf("testmodel: %v", err)
		}
		lib = filepath.Join(root, ".cache", "ort", "libonnxruntime.so.1")
	}
	if _, err := os.Stat(lib); err != nil {
		tb.Fatalf("testmodel: ONNX Runtime library %s: %v: run make ort", lib, err)
	}
	return lib
}

// repoRoot is the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
