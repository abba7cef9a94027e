package persistence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrTooLarge is returned by BlobStore.Put when the content exceeds the limit.
var ErrTooLarge = errors.New("persistence: blob exceeds size limit")

// ErrBadDigest is returned for a digest that is not 64 lowercase hex digits.
var ErrBadDigest = errors.New("persistence: malformed blob digest")

// BlobStore keeps immutable content under its SHA-256 digest:
// <dir>/<first two hex digits>/<digest>. Content is written to a temporary
// file, fsynced, then renamed into place, so a blob is either whole or absent.
// File names are always computed by the server, never taken from a user.
type BlobStore struct {
	dir string
	tmp string
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Digest string // lowercase hex SHA-256
	Size   int64
}

func openBlobs(dir string) (*BlobStore, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("persistence: create blob dir: %w", err)
	}
	// Leftovers of writes interrupted by a crash are garbage.
	if entries, err := os.ReadDir(tmp); err == nil {
		for _, e := range entries {
			_ = os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	return &BlobStore{dir: dir, tmp: tmp}, nil
}

// Put streams r into the store, never holding the whole content in memory.
// With max > 0, content longer than max bytes is rejected with ErrTooLarge
// and nothing is kept.
func (b *BlobStore) Put(r io.Reader, max int64) (BlobInfo, error) {
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return BlobInfo{}, fmt.Errorf("persistence: blob temp file: %w", err)
	}
	tmpName := f.Name()
	keep := false
	defer func() {
		if !keep {
			_ = f.Close()
			_ = os.Remove(tmpName)
		}
	}()
	h := sha256.New()
	src := r
	if max > 0 {
		src = io.LimitReader(r, max+1)
	}
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("persistence: write blob: %w", err)
	}
	if max > 0 && n > max {
		return BlobInfo{}, ErrTooLarge
	}
	if err := f.Sync(); err != nil {
		return BlobInfo{}, fmt.Errorf("persistence: sync blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return BlobInfo{}, fmt.Errorf("persistence: close blob: %w", err)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	final := b.path(digest)
	if _, err := os.Stat(filepath.Dir(final)); err != nil {
		if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
			return BlobInfo{}, fmt.Errorf("persistence: blob dir: %w", err)
		}
		syncDir(b.dir) // make the new prefix directory's entry durable
	}
	if err := os.Rename(tmpName, final); err != nil {
		return BlobInfo{}, fmt.Errorf("persistence: place blob: %w", err)
	}
	keep = true
	syncDir(filepath.Dir(final))
	return BlobInfo{Digest: digest, Size: n}, nil
}

// Open returns a reader for the blob with the given digest.
func (b *BlobStore) Open(digest string) (*os.File, error) {
	if !validDigest(digest) {
		return nil, ErrBadDigest
	}
	f, err := os.Open(b.path(digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Delete removes the blob; deleting a missing blob is not an error.
func (b *BlobStore) Delete(digest string) error {
	if !validDigest(digest) {
		return ErrBadDigest
	}
	err := os.Remove(b.path(digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (b *BlobStore) path(digest string) string {
	return filepath.Join(b.dir, digest[:2], digest)
}

func validDigest(d string) bool {
	if len(d) != 64 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
