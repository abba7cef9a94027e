package persistence

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func memStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open("/d", &Options{FS: vfs.NewMem(), NoBlobs: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestKeyspacesAreIsolated(t *testing.T) {
	s := memStore(t)
	a, err := s.Keyspace(SpaceAuth)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Keyspace(SpaceCase)
	if err := a.Set([]byte("k"), []byte("auth"), true); err != nil {
		t.Fatal(err)
	}
	if err := c.Set([]byte("k"), []byte("case"), true); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get([]byte("k")); string(v) != "auth" {
		t.Fatalf("auth sees %q", v)
	}
	if _, err := c.Get([]byte("missing")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	n := 0
	_ = c.Scan(nil, false, func(k, v []byte) error {
		n++
		if string(v) != "case" {
			t.Errorf("case scan saw %q=%q", k, v)
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("case scan saw %d keys", n)
	}
	if _, err := s.Keyspace(SpaceAuth); !errors.Is(err, ErrKeyspaceTaken) {
		t.Fatalf("second claim: %v", err)
	}
	if _, err := s.Keyspace("nope"); !errors.Is(err, ErrUnknownSpace) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestScanOrderAndRange(t *testing.T) {
	s := memStore(t)
	k, _ := s.Keyspace(SpaceJob)
	for _, key := range []string{"a/1", "a/2", "a/3", "b/1", "a"} {
		_ = k.Set([]byte(key), []byte(key), false)
	}
	var got []string
	_ = k.Scan([]byte("a/"), true, func(key, _ []byte) error {
		got = append(got, string(key))
		return nil
	})
	if strings.Join(got, ",") != "a/3,a/2,a/1" {
		t.Fatalf("reverse prefix scan: %v", got)
	}
	got = nil
	_ = k.ScanRange([]byte("a/2"), []byte("b"), false, func(key, _ []byte) error {
		got = append(got, string(key))
		if len(got) == 1 {
			return nil
		}
		return ErrStopScan
	})
	if strings.Join(got, ",") != "a/2,a/3" {
		t.Fatalf("range scan: %v", got)
	}
	for prefix, want := range map[string]int{"a/": 3, "a": 4, "b/": 1, "c/": 0, "": 5} {
		if n, err := k.Count([]byte(prefix)); err != nil || n != want {
			t.Errorf("Count(%q) = %d, %v; want %d", prefix, n, err, want)
		}
	}
}

func TestBatchAtomicAndDeletePrefix(t *testing.T) {
	s := memStore(t)
	k, _ := s.Keyspace(SpaceCase)
	b := k.NewBatch()
	_ = b.Set([]byte("c/1/a"), []byte("x"))
	_ = b.Set([]byte("c/1/b"), []byte("y"))
	_ = b.Set([]byte("c/2/a"), []byte("z"))
	if _, err := k.Get([]byte("c/1/a")); !errors.Is(err, ErrNotFound) {
		t.Fatal("batch visible before commit")
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close() // after commit: must be harmless
	if err := b.Commit(true); err == nil {
		t.Fatal("second commit must fail")
	}
	d := k.NewBatch()
	_ = d.DeletePrefix([]byte("c/1/"))
	if err := d.Commit(true); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Get([]byte("c/1/b")); !errors.Is(err, ErrNotFound) {
		t.Fatal("prefix not deleted")
	}
	if v, _ := k.Get([]byte("c/2/a")); string(v) != "z" {
		t.Fatal("delete prefix went too far")
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	_ = s.Close()
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	_ = s2.Close()
}

func TestBlobStore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ks, err := s.Keyspace(SpaceEvid)
	if err != nil {
		t.Fatal(err)
	}
	b := ks.Blobs()
	info, err := b.Put(strings.NewReader("hello logs"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 10 || len(info.Digest) != 64 {
		t.Fatalf("info %+v", info)
	}
	f, err := b.Open(info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if string(data) != "hello logs" {
		t.Fatalf("read back %q", data)
	}
	if _, err := b.Put(bytes.NewReader(make([]byte, 101)), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "blobs", "evid", "tmp"))
	if len(left) != 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
	for _, bad := range []string{"../../etc/passwd", "", strings.Repeat("A", 64), strings.Repeat("0", 63)} {
		if _, err := b.Open(bad); !errors.Is(err, ErrBadDigest) {
			t.Errorf("open %q: %v", bad, err)
		}
	}
	if err := b.Delete(info.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(info.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "node.key")
	a, err := LoadOrCreateSecret(path, 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("create: %v %d", err, len(a))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	b, err := LoadOrCreateSecret(path, 32)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatal("second call must return the same secret")
	}
	_ = os.Chmod(path, 0o644)
	if _, err := LoadOrCreateSecret(path, 32); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable secret accepted: %v", err)
	}
	_ = os.Chmod(path, 0o600)
	if _, err := LoadOrCreateSecret(path, 64); err == nil {
		t.Fatal("too short secret accepted")
	}
}

// A batch committed without waiting is visible at once, durable once Wait
// returns, and a later synced write in another keyspace makes it durable too
// (one ordered log): the turn path relies on both.
func TestCommitNoWait(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("/d", &Options{FS: fs, NoBlobs: true})
	if err != nil {
		t.Fatal(err)
	}
	cases, _ := s.Keyspace(SpaceCase)
	audit, _ := s.Keyspace(SpaceAudit)

	b := cases.NewBatch()
	_ = b.Set([]byte("user"), []byte("message"))
	p, err := b.CommitNoWait()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cases.Get([]byte("user")); err != nil || string(v) != "message" {
		t.Fatalf("before Wait: got %q, %v; want the value visible", v, err)
	}
	if err := b.Commit(true); err == nil {
		t.Fatal("committing a batch handed to CommitNoWait again succeeded")
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err == nil {
		t.Fatal("a second Wait succeeded")
	}
	afterWait := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})

	b2 := cases.NewBatch()
	_ = b2.Set([]byte("second"), []byte("queued"))
	p2, err := b2.CommitNoWait()
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Set([]byte("record"), []byte("synced"), true); err != nil {
		t.Fatal(err)
	}
	afterLaterSync := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := p2.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		fs   *vfs.MemFS
		want map[string]string // key → value in the case keyspace; "" = absent
	}{
		{"crash after Wait", afterWait, map[string]string{"user": "message", "second": ""}},
		{"crash after a later synced write", afterLaterSync, map[string]string{"user": "message", "second": "queued"}},
	} {
		s, err := Open("/d", &Options{FS: tc.fs, NoBlobs: true})
		if err != nil {
			t.Fatalf("%s: reopen: %v", tc.name, err)
		}
		ks, _ := s.Keyspace(SpaceCase)
		for k, want := range tc.want {
			v, err := ks.Get([]byte(k))
			switch {
			case want == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("%s: %s = %q, %v; want absent", tc.name, k, v, err)
			case want != "" && (err != nil || string(v) != want):
				t.Errorf("%s: %s = %q, %v; want %q", tc.name, k, v, err, want)
			}
		}
		_ = s.Close()
	}
}

// GetSorted must find every key whether it sits in the memtable or in
// flushed tables, never step into a neighbouring keyspace, and refuse
// unsorted input and missing keys.
func TestGetSorted(t *testing.T) {
	s := memStore(t)
	c, _ := s.Keyspace(SpaceCase)
	j, _ := s.Keyspace(SpaceJob)
	key := func(i int) []byte { return fmt.Appendf(nil, "e/%04d", i) }
	for i := range 200 {
		if i%2 == 0 { // odd keys stay absent
			_ = c.Set(key(i), fmt.Appendf(nil, "v%d", i), false)
			_ = j.Set(key(i+1), []byte("other keyspace"), false)
		}
		if i == 100 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var keys [][]byte
	for i := 0; i < 200; i += 6 {
		keys = append(keys, key(i))
	}
	got := map[int]string{}
	err := c.GetSorted(keys, func(i int, v []byte) error {
		got[i] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if want := fmt.Sprintf("v%d", i*6); got[i] != want {
			t.Fatalf("key %s: got %q, want %q", keys[i], got[i], want)
		}
	}
	if err := c.GetSorted([][]byte{key(2), key(3), key(4)}, func(int, []byte) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := c.GetSorted([][]byte{key(4), key(2)}, func(int, []byte) error { return nil }); err == nil {
		t.Fatal("unsorted keys accepted")
	}
	stop := errors.New("stop")
	if err := c.GetSorted([][]byte{key(0), key(2)}, func(int, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error: %v", err)
	}
	if err := c.GetSorted(nil, func(int, []byte) error { t.Fatal("called"); return nil }); err != nil {
		t.Fatal(err)
	}
}
