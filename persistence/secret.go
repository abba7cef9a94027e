package persistence

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// LoadOrCreateSecret returns the secret in path, creating it with n fresh
// random bytes on first start. A secret file readable by group or others is
// refused with the chmod that fixes it: whoever reads a signing or
// pseudonym key can forge tokens or undo pseudonyms.
func LoadOrCreateSecret(path string, n int) ([]byte, error) {
	key, err := readSecret(path, n)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistence: create secret directory %s: %w", dir, err)
	}
	// A temp file hard-linked into place: the secret appears whole or not
	// at all, and of two processes racing on a fresh directory exactly one
	// wins while the other reads the winner's secret.
	tmp, err := os.CreateTemp(dir, ".secret-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("persistence: create secret file in %s: %w", dir, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	key = make([]byte, n)
	_, _ = rand.Read(key)
	_, werr := tmp.Write(key)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("persistence: write secret file %s: %w", path, werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return readSecret(path, n)
		}
		return nil, fmt.Errorf("persistence: install secret file %s: %w", path, err)
	}
	syncDir(dir)
	return key, nil
}

// readSecret reads an existing secret file after checking its permissions.
func readSecret(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("persistence: open secret file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("persistence: stat secret file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("persistence: secret file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("persistence: secret file %s has mode %04o, readable by group or others; fix with: chmod 600 %s", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("persistence: read secret file %s: %w", path, err)
	}
	if len(key) < n {
		return nil, fmt.Errorf("persistence: secret file %s holds %d bytes, need at least %d; delete it to generate a new one", path, len(key), n)
	}
	return key, nil
}
