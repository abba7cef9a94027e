package persistence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/zap"
)

// Sentinel errors. Callers check them with errors.Is.
var (
	ErrNotFound      = errors.New("persistence: not found")
	ErrLocked        = errors.New("persistence: data directory is in use by another process (is a server running on it?)")
	ErrClosed        = errors.New("persistence: store is closed")
	ErrKeyspaceTaken = errors.New("persistence: keyspace already claimed")
	ErrUnknownSpace  = errors.New("persistence: unknown keyspace")
)

// Keyspace names. Each module claims exactly one.
const (
	SpaceAuth    = "auth"
	SpaceSession = "sess"
	SpaceCase    = "case"
	SpaceEvid    = "evid"
	SpaceKB      = "kb"
	SpaceJob     = "job"
	SpaceAudit   = "audit"
)

var knownSpaces = map[string]bool{
	SpaceAuth: true, SpaceSession: true, SpaceCase: true, SpaceEvid: true,
	SpaceKB: true, SpaceJob: true, SpaceAudit: true,
}

// WriteObserver is told how long each committed write took; the gateway
// exports it as a Prometheus histogram.
type WriteObserver func(space string, sync bool, d time.Duration)

// Options configures Open. The zero value is usable.
type Options struct {
	// FS is the filesystem Pebble runs on; nil means the OS filesystem.
	// Tests pass vfs.NewMem() or vfs.NewCrashableMem().
	FS vfs.FS
	// Logger receives Pebble's own log lines. Nil means no logging.
	Logger *zap.Logger
	// OnWrite, if set, observes every committed write.
	OnWrite WriteObserver
	// NoBlobs skips the blob store (used with in-memory filesystems).
	NoBlobs bool
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() *Options {
	if o == nil {
		o = &Options{}
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Store is an open data directory.
type Store struct {
	dir     string
	db      *pebble.DB
	lock    *pebble.Lock
	noBlobs bool
	onWrite WriteObserver

	mu      sync.Mutex
	claimed map[string]bool
	closed  bool
}

// Open opens (creating if needed) the data directory dir. It returns
// ErrLocked when another process holds the directory.
func Open(dir string, opts *Options) (*Store, error) {
	opts = opts.EnsureDefaults()
	if dir == "" {
		return nil, errors.New("persistence: data directory must not be empty")
	}
	dbDir := filepath.Join(dir, "db")
	if err := mkdirAllSynced(opts.FS, dbDir); err != nil {
		return nil, fmt.Errorf("persistence: create %s: %w", dbDir, err)
	}
	lock, err := pebble.LockDirectory(dbDir, opts.FS)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
	}
	popts := &pebble.Options{
		FS:                 opts.FS,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             zapPebbleLogger{opts.Logger.Sugar().With("component", "pebble")},
		Lock:               lock,
		// A 64 MiB memtable (Pebble's default is 4 MiB): under hundreds of
		// concurrent turns the log's fdatasync waits less behind memtable
		// flushes writing tables to the same disk; in alternating load runs
		// it lowered every live-session p99 by 12-54 % (docs/benchmarks.md).
		// Pebble starts at 256 KiB and doubles a memtable only as writes
		// fill it, so a quiet node never holds the full size; a busy one
		// holds up to two (one flushing). The block cache keeps its 8 MiB
		// default: 32 MiB of cache added ~90 B per idle case actor at 100k
		// cases (BenchmarkIdleActorMemory, target 2 KB), the memtable none.
		MemTableSize: 64 << 20,
	}
	// Point reads (indexes, acks, events by seq) skip tables without the
	// key instead of searching each.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	popts.EnsureDefaults()
	db, err := pebble.Open(dbDir, popts)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("persistence: open pebble at %s: %w", dbDir, err)
	}
	s := &Store{dir: dir, db: db, lock: lock, onWrite: opts.OnWrite, claimed: map[string]bool{}, noBlobs: opts.NoBlobs}
	return s, nil
}

// Dir is the data directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// Keyspace claims the keyspace name for the calling module. Each name can be
// claimed once per Store; a second claim fails so that one module cannot
// reach into another's keys.
func (s *Store) Keyspace(name string) (*Keyspace, error) {
	if !knownSpaces[name] {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSpace, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed[name] {
		return nil, fmt.Errorf("%w: %q", ErrKeyspaceTaken, name)
	}
	ks := &Keyspace{store: s, name: name, prefix: []byte(name + "/")}
	if !s.noBlobs {
		b, err := openBlobs(filepath.Join(s.dir, "blobs", name))
		if err != nil {
			return nil, err
		}
		ks.blobs = b
	}
	s.claimed[name] = true
	return ks, nil
}

// Healthy reports whether the database is open and answering reads.
func (s *Store) Healthy() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	_, closer, err := s.db.Get([]byte("\x00health"))
	if err == nil {
		_ = closer.Close()
		return nil
	}
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	return err
}

// Close flushes and closes the database and releases the directory lock.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.db.Close()
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

func (s *Store) observe(space string, sync bool, start time.Time) {
	if s.onWrite != nil {
		s.onWrite(space, sync, time.Since(start))
	}
}

// zapPebbleLogger routes Pebble's printf-style logging into zap.
type zapPebbleLogger struct{ l *zap.SugaredLogger }

func (z zapPebbleLogger) Infof(format string, args ...any)  { z.l.Infof(format, args...) }
func (z zapPebbleLogger) Errorf(format string, args ...any) { z.l.Errorf(format, args...) }
func (z zapPebbleLogger) Fatalf(format string, args ...any) {
	z.l.Errorf(format, args...)
	_ = z.l.Sync()
	os.Exit(70)
}

// mkdirAllSynced creates dir and its missing parents and fsyncs each parent
// after adding an entry, so a fresh data directory survives a power cut (a
// directory entry that was never synced may vanish, taking the database with
// it).
func mkdirAllSynced(fs vfs.FS, dir string) error {
	dir = filepath.Clean(dir)
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSynced(fs, parent); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	d, err := fs.OpenDir(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
