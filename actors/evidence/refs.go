package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/persistence"
)

// Blob lifetime: r/<sha256> counts the file records, in all cases, that
// reference a blob. Every change to it is in the batch that adds or removes
// the records, under Store.mu; the blob goes when the count reaches zero.

func (s *Store) refCount(digest string) (int64, error) {
	v, err := s.ks.Get(refKey(digest))
	if errors.Is(err, persistence.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("evidence: read reference count: %w", err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("evidence: corrupt reference count for %s: %w", digest, err)
	}
	return n, nil
}

func (s *Store) beginUpload() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

// endUpload ends an upload; a blob it wrote without committing a
// reference is doomed like any other unreferenced blob.
func (s *Store) endUpload(unreferenced string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if unreferenced != "" {
		s.doomed[unreferenced] = true
	}
	s.sweepLocked()
}

// sweepLocked removes doomed blobs that are still unreferenced once no
// upload is in flight. Callers hold mu.
func (s *Store) sweepLocked() {
	if s.inflight > 0 || len(s.doomed) == 0 {
		return
	}
	for digest := range s.doomed {
		delete(s.doomed, digest)
		n, err := s.refCount(digest)
		if err != nil || n > 0 {
			continue
		}
		if err := s.blobs.Delete(digest); err != nil {
			s.log.Warn("evidence: remove unreferenced blob", zap.String("sha256", digest), zap.Error(err))
		}
	}
}

// Delete removes one file of the case. Its content is removed with the last
// file, in any case, that references it.
func (s *Store) Delete(ctx context.Context, caseID, fileID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.get(caseID, fileID)
	if err != nil {
		return err
	}
	b := s.ks.NewBatch()
	defer b.Close()
	if err := errors.Join(b.Delete(fileKey(caseID, fileID)), b.Delete(analysisKey(caseID, fileID))); err != nil {
		return fmt.Errorf("evidence: batch: %w", err)
	}
	// Hand the case's content pointer to the oldest remaining copy.
	first, err := s.ks.Get(hashKey(caseID, f.SHA256))
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return fmt.Errorf("evidence: look up content: %w", err)
	}
	if string(first) == fileID {
		next, err := s.oldestCopy(caseID, f.SHA256, fileID)
		if err != nil {
			return err
		}
		if next == "" {
			err = b.Delete(hashKey(caseID, f.SHA256))
		} else {
			err = b.Set(hashKey(caseID, f.SHA256), []byte(next))
		}
		if err != nil {
			return fmt.Errorf("evidence: batch: %w", err)
		}
	}
	zero, err := s.unref(b, map[string]int64{f.SHA256: 1})
	if err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("evidence: delete file %s: %w", fileID, err)
	}
	s.doomLocked(zero)
	return nil
}

// oldestCopy finds the oldest file of the case with this content other
// than skip.
func (s *Store) oldestCopy(caseID, digest, skip string) (string, error) {
	found := ""
	err := s.ks.Scan(filePrefix(caseID), false, func(_, v []byte) error {
		var f File
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("evidence: decode file record: %w", err)
		}
		if f.SHA256 == digest && f.FileID != skip {
			found = f.FileID
			return persistence.ErrStopScan
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("evidence: scan case %s: %w", caseID, err)
	}
	return found, nil
}

// unref adds reference count decrements to b and returns the blobs whose
// count reaches zero. Callers hold mu.
func (s *Store) unref(b *persistence.Batch, drop map[string]int64) ([]string, error) {
	var zero []string
	for digest, d := range drop {
		n, err := s.refCount(digest)
		if err != nil {
			return nil, err
		}
		n -= d
		if n <= 0 {
			zero = append(zero, digest)
			err = b.Delete(refKey(digest))
		} else {
			err = b.Set(refKey(digest), []byte(strconv.FormatInt(n, 10)))
		}
		if err != nil {
			return nil, fmt.Errorf("evidence: batch: %w", err)
		}
	}
	return zero, nil
}

// doomLocked schedules removal of blobs that lost their last reference.
// Callers hold mu.
func (s *Store) doomLocked(digests []string) {
	for _, d := range digests {
		s.doomed[d] = true
	}
	s.sweepLocked()
}

// DeleteCase removes every file of the case, and the content no other case
// references.
func (s *Store) DeleteCase(ctx context.Context, caseID string) error {
	if !validCaseID(caseID) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.scan(ctx, caseID, false)
	if err != nil {
		return err
	}
	drop := map[string]int64{}
	for _, f := range files {
		drop[f.SHA256]++
	}
	b := s.ks.NewBatch()
	defer b.Close()
	if err := errors.Join(
		b.DeletePrefix(filePrefix(caseID)),
		b.DeletePrefix(analysisPrefix(caseID)),
		b.DeletePrefix(hashPrefix(caseID)),
	); err != nil {
		return fmt.Errorf("evidence: batch: %w", err)
	}
	zero, err := s.unref(b, drop)
	if err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("evidence: delete case %s: %w", caseID, err)
	}
	s.doomLocked(zero)
	return nil
}
