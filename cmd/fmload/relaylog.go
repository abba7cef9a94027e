package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The durable floor's log (`fmload relay --durable DIR`): one append-only
// file written with group commit, as a WAL is, so that the floor-durable
// target pays for durability what a database must and for nothing else.
// One committer goroutine takes every record queued so far, writes them
// with one write and makes them durable with one fdatasync, then releases
// their appenders; records queued meanwhile wait for the next round.
//
// A record is [body length uint32 LE][CRC-32C of body uint32 LE][body],
// the body kind (1 byte), uvarint seq, uvarint length of the case id, the
// case id and the text up to the end. Nothing reads the log but the tests.

const (
	relayLogName = "relay.log"
	// relayLogPrealloc is reserved when the log is created, as Pebble
	// reserves its WAL (FALLOC_FL_KEEP_SIZE): appends then land in blocks
	// already allocated, so their fdatasync does not also commit block
	// allocations. It still records the growing file size, as Pebble's
	// does for a WAL it has not recycled.
	relayLogPrealloc = 64 << 20
	recordHeader     = 8
	// maxRecordBody bounds what the reader accepts as a length; anything
	// larger is damage (a turn's text is at most the relay's 512 KiB frame).
	maxRecordBody = 16 << 20
)

// Record kinds: the user message of a turn, the LLM request sent for it
// (the body, at the user message's seq), its answer, or its failure.
const (
	recordUser    byte = 'u'
	recordRequest byte = 'r'
	recordAnswer  byte = 'a'
	recordFailed  byte = 'f'
)

var errLogClosed = errors.New("relay log: closed")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// logRecord is one entry of the log.
type logRecord struct {
	Kind   byte
	CaseID string
	Seq    uint64
	Text   string
}

// logRound is the records one write and one fdatasync cover.
type logRound struct {
	buf  []byte
	n    int
	done chan struct{} // closed once the round is durable or failed
	err  error         // written before done is closed
}

func newLogRound() *logRound { return &logRound{done: make(chan struct{})} }

// durableLog is the log; Append and Close may be called from any
// goroutine.
type durableLog struct {
	f      *os.File
	fd     int
	wake   chan struct{} // capacity 1: a round is queued or Close was called
	exited chan struct{} // closed when the committer has returned

	mu      sync.Mutex
	next    *logRound // what the next round writes
	closing bool
	err     error // the first write or sync failure: every later append fails

	syncs   atomic.Int64 // fdatasync calls, for the tests
	durable atomic.Int64 // bytes a completed fdatasync covers
}

// openDurableLog creates relay.log in dir (which must exist and not hold
// one) and starts its committer.
func openDurableLog(dir string) (*durableLog, error) {
	path := filepath.Join(dir, relayLogName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("relay log: %w", err)
	}
	fd := int(f.Fd())
	// Without fallocate (some file systems) the log still works; each sync
	// may just cost more.
	_ = unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, relayLogPrealloc)
	// The file's directory entry must be durable too, or a crash takes the
	// synced records with it.
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	l := &durableLog{f: f, fd: fd, wake: make(chan struct{}, 1), exited: make(chan struct{}), next: newLogRound()}
	go l.commitLoop()
	return l, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("relay log: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("relay log: sync %s: %w", dir, err)
	}
	return nil
}

// Append queues rec for the next round and returns once that round is
// durable, or with the error that stopped it.
func (l *durableLog) Append(rec logRecord) error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return errLogClosed
	}
	if err := l.err; err != nil {
		l.mu.Unlock()
		return err
	}
	r := l.next
	r.buf = appendRecord(r.buf, rec)
	r.n++
	l.mu.Unlock()
	l.signal()
	<-r.done
	return r.err
}

// signal wakes the committer; a wake-up already pending covers this one,
// since the committer takes everything queued when it wakes.
func (l *durableLog) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close refuses further appends, lets the committer finish the rounds
// already queued and closes the file. It is safe to call more than once.
func (l *durableLog) Close() error {
	l.mu.Lock()
	first := !l.closing
	l.closing = true
	l.mu.Unlock()
	l.signal()
	<-l.exited
	if !first {
		return nil
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("relay log: close: %w", err)
	}
	return nil
}

// Syncs is the number of fdatasync calls so far.
func (l *durableLog) Syncs() int64 { return l.syncs.Load() }

// Durable is how many bytes of the file a completed fdatasync covers.
func (l *durableLog) Durable() int64 { return l.durable.Load() }

// commitLoop is the committer: one round per wake-up while records are
// queued, until Close.
func (l *durableLog) commitLoop() {
	defer close(l.exited)
	for {
		<-l.wake
		r, closing := l.take()
		if r != nil {
			l.commit(r)
		}
		if closing {
			return
		}
	}
}

// take swaps the queued round for an empty one; nil when nothing is
// queued. Once closing is seen no append can queue any more, so the round
// returned with it is the last.
func (l *durableLog) take() (*logRound, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.next
	if r.n == 0 {
		return nil, l.closing
	}
	l.next = newLogRound()
	return r, l.closing
}

// commit writes and syncs one round and releases its appenders.
func (l *durableLog) commit(r *logRound) {
	defer close(r.done)
	if r.err = l.failure(); r.err != nil {
		return
	}
	if _, err := l.f.Write(r.buf); err != nil {
		r.err = l.fail(fmt.Errorf("relay log: write: %w", err))
		return
	}
	l.syncs.Add(1)
	if err := unix.Fdatasync(l.fd); err != nil {
		r.err = l.fail(fmt.Errorf("relay log: fdatasync: %w", err))
		return
	}
	l.durable.Add(int64(len(r.buf)))
}

func (l *durableLog) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// fail makes err sticky: after a failed write or fdatasync what the file
// holds is unknown (the kernel may have dropped the dirty pages), so no
// later record may claim to be durable behind it.
func (l *durableLog) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	return l.err
}

// appendRecord encodes rec onto b.
func appendRecord(b []byte, rec logRecord) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeader)...)
	b = append(b, rec.Kind)
	b = binary.AppendUvarint(b, rec.Seq)
	b = binary.AppendUvarint(b, uint64(len(rec.CaseID)))
	b = append(b, rec.CaseID...)
	b = append(b, rec.Text...)
	body := b[start+recordHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, crcTable))
	return b
}

// readRelayLog returns every record of the log at path, in order; a torn
// or damaged record is an error.
func readRelayLog(path string) ([]logRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay log: %w", err)
	}
	return decodeRelayLog(data)
}

// decodeRelayLog decodes a whole log.
func decodeRelayLog(data []byte) ([]logRecord, error) {
	var out []logRecord
	for off := 0; off < len(data); {
		if len(data)-off < recordHeader {
			return out, fmt.Errorf("relay log: torn header at offset %d", off)
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n > maxRecordBody || n > len(data)-off-recordHeader {
			return out, fmt.Errorf("relay log: record at offset %d: length %d past the end", off, n)
		}
		body := data[off+recordHeader : off+recordHeader+n]
		if crc32.Checksum(body, crcTable) != sum {
			return out, fmt.Errorf("relay log: record at offset %d: checksum mismatch", off)
		}
		rec, err := decodeRecord(body)
		if err != nil {
			return out, fmt.Errorf("relay log: record at offset %d: %w", off, err)
		}
		out = append(out, rec)
		off += recordHeader + n
	}
	return out, nil
}

func decodeRecord(body []byte) (logRecord, error) {
	if len(body) < 1 {
		return logRecord{}, errors.New("empty body")
	}
	rec := logRecord{Kind: body[0]}
	rest := body[1:]
	seq, k := binary.Uvarint(rest)
	if k <= 0 {
		return rec, errors.New("bad seq")
	}
	rec.Seq, rest = seq, rest[k:]
	idLen, k := binary.Uvarint(rest)
	if k <= 0 || idLen > uint64(len(rest)-k) {
		return rec, errors.New("bad case id length")
	}
	rest = rest[k:]
	rec.CaseID, rec.Text = string(rest[:idLen]), string(rest[idLen:])
	return rec, nil
}
