package persistence

import (
	"bytes"
	"errors"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Keyspace is one module's view of the database: every key it reads or
// writes is silently prefixed with "<name>/", and scans never leave that
// prefix. Keys passed in and returned are relative to the keyspace.
type Keyspace struct {
	store  *Store
	name   string
	prefix []byte
	blobs  *BlobStore
}

// Blobs is the module's own content-addressed blob store,
// <data>/blobs/<keyspace>/ (nil with Options.NoBlobs). Blobs are per module
// for the same reason keys are: each module counts its own references, and
// one module deleting content it no longer needs must never remove a copy
// another module still uses.
func (k *Keyspace) Blobs() *BlobStore { return k.blobs }

// Name is the keyspace's name ("case", "auth", ...).
func (k *Keyspace) Name() string { return k.name }

func (k *Keyspace) abs(key []byte) []byte {
	out := make([]byte, 0, len(k.prefix)+len(key))
	out = append(out, k.prefix...)
	return append(out, key...)
}

func writeOpts(sync bool) *pebble.WriteOptions {
	if sync {
		return pebble.Sync
	}
	return pebble.NoSync
}

// Get returns a copy of the value stored at key, or ErrNotFound.
func (k *Keyspace) Get(key []byte) ([]byte, error) {
	v, closer, err := k.store.db.Get(k.abs(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Set stores value at key. With sync the write is durable on return.
func (k *Keyspace) Set(key, value []byte, sync bool) error {
	start := time.Now()
	err := k.store.db.Set(k.abs(key), value, writeOpts(sync))
	k.store.observe(k.name, sync, start)
	return err
}

// Delete removes key. With sync the deletion is durable on return.
func (k *Keyspace) Delete(key []byte, sync bool) error {
	start := time.Now()
	err := k.store.db.Delete(k.abs(key), writeOpts(sync))
	k.store.observe(k.name, sync, start)
	return err
}

// Batch groups writes to one keyspace so they commit atomically.
type Batch struct {
	ks *Keyspace
	b  *pebble.Batch // nil once committed or closed: Pebble pools batches, a double close corrupts the pool
}

// NewBatch starts an atomic batch of writes.
func (k *Keyspace) NewBatch() *Batch {
	return &Batch{ks: k, b: k.store.db.NewBatch()}
}

// Set adds a write to the batch.
func (b *Batch) Set(key, value []byte) error { return b.b.Set(b.ks.abs(key), value, nil) }

// Delete adds a deletion to the batch.
func (b *Batch) Delete(key []byte) error { return b.b.Delete(b.ks.abs(key), nil) }

// DeletePrefix deletes every key starting with prefix (a range tombstone).
func (b *Batch) DeletePrefix(prefix []byte) error {
	lo := b.ks.abs(prefix)
	return b.b.DeleteRange(lo, prefixEnd(lo), nil)
}

// Len is the number of operations in the batch.
func (b *Batch) Len() int { return int(b.b.Count()) }

// Commit applies the batch atomically; with sync it is durable on return.
func (b *Batch) Commit(sync bool) error {
	if b.b == nil {
		return errors.New("persistence: batch already committed or closed")
	}
	start := time.Now()
	err := b.b.Commit(writeOpts(sync))
	b.ks.store.observe(b.ks.name, sync, start)
	_ = b.b.Close()
	b.b = nil
	return err
}

// Pending is a batch that has been applied but may not be durable yet.
type Pending struct {
	ks    *Keyspace
	b     *pebble.Batch
	start time.Time
}

// CommitNoWait applies the batch and queues it for a synced write without
// waiting for the sync: readers see it at once, and it is durable when
// Wait returns nil. Work that must not wait for this write can run
// meanwhile; anything that must only happen once the write is durable
// (an acknowledgement, a request leaving the process) waits first. A
// synced write committed after this one is durable only once this one is
// too: the write-ahead log is one ordered file. The caller must call Wait
// exactly once, even when it no longer needs the result.
func (b *Batch) CommitNoWait() (*Pending, error) {
	if b.b == nil {
		return nil, errors.New("persistence: batch already committed or closed")
	}
	p := &Pending{ks: b.ks, b: b.b, start: time.Now()}
	if err := b.ks.store.db.ApplyNoSyncWait(b.b, pebble.Sync); err != nil {
		b.ks.store.observe(b.ks.name, true, p.start)
		_ = b.b.Close()
		b.b = nil
		return nil, err
	}
	b.b = nil // owned by p until Wait
	return p, nil
}

// Wait blocks until the write is durable and releases the batch. A second
// call reports an error.
func (p *Pending) Wait() error {
	if p.b == nil {
		return errors.New("persistence: pending write already waited for")
	}
	err := p.b.SyncWait()
	p.ks.store.observe(p.ks.name, true, p.start)
	_ = p.b.Close()
	p.b = nil
	return err
}

// Close discards an uncommitted batch. Safe after Commit and when repeated.
func (b *Batch) Close() {
	if b.b != nil {
		_ = b.b.Close()
		b.b = nil
	}
}

// GetSorted reads many keys, given in ascending order, through one
// iterator: each lookup continues from where the previous one stopped, so
// a batch of nearby keys costs one pass over their blocks instead of a
// fresh descent per key (as Get does). fn gets the index of each key and a
// copy of its value; a missing key is ErrNotFound.
func (k *Keyspace) GetSorted(keys [][]byte, fn func(i int, value []byte) error) error {
	if len(keys) == 0 {
		return nil
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			return errors.New("persistence: GetSorted keys must be strictly ascending")
		}
	}
	it, err := k.store.db.NewIter(&pebble.IterOptions{
		LowerBound: k.abs(keys[0]),
		UpperBound: prefixEnd(k.abs(keys[len(keys)-1])),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	abs := make([]byte, 0, len(k.prefix)+64)
	for i, key := range keys {
		abs = append(append(abs[:0], k.prefix...), key...)
		if !it.SeekGE(abs) || !bytes.Equal(it.Key(), abs) {
			if err := it.Error(); err != nil {
				return err
			}
			return ErrNotFound
		}
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		out := bytes.Clone(val)
		if out == nil {
			out = []byte{}
		}
		if err := fn(i, out); err != nil {
			return err
		}
	}
	return it.Error()
}

// ErrStopScan may be returned by a Scan callback to stop early without error.
var ErrStopScan = errors.New("persistence: stop scan")

// Scan calls fn for every key with the given prefix in ascending order (or
// descending with reverse). key and value are copies.
func (k *Keyspace) Scan(prefix []byte, reverse bool, fn func(key, value []byte) error) error {
	lo := k.abs(prefix)
	return k.scanAbs(lo, prefixEnd(lo), reverse, fn)
}

// Count is how many keys have the given prefix; it reads no values.
func (k *Keyspace) Count(prefix []byte) (int, error) {
	lo := k.abs(prefix)
	it, err := k.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// ScanRange calls fn for keys in [from, to) (relative keys) in ascending
// order, or descending with reverse. A nil to means "to the end of the
// keyspace".
func (k *Keyspace) ScanRange(from, to []byte, reverse bool, fn func(key, value []byte) error) error {
	lo := k.abs(from)
	var hi []byte
	if to == nil {
		hi = prefixEnd(k.prefix)
	} else {
		hi = k.abs(to)
	}
	return k.scanAbs(lo, hi, reverse, fn)
}

func (k *Keyspace) scanAbs(lo, hi []byte, reverse bool, fn func(key, value []byte) error) error {
	it, err := k.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ; ok; ok = step(it, reverse) {
		key := bytes.Clone(it.Key()[len(k.prefix):])
		val, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(key, bytes.Clone(val)); err != nil {
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
	}
	return it.Error()
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
