package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// ErrCorrupt is returned by Load for a snapshot it cannot use: truncated,
// failing its checksum, malformed, of another version or kind, or (for
// Vector) of another dimension. The index is left as it was; rebuild it from
// the source of truth.
var ErrCorrupt = errors.New("index: snapshot corrupt")

// Snapshot layout, all integers little-endian:
//
//	offset 0  "FMIX"           magic
//	       4  kind             'L' lexical, 'V' vector
//	       5  version          1
//	       6  0, 0             reserved
//	       8  uint64           body length
//	      16  body             kind-specific, varint-framed (see below)
//	       …  sha256           of everything before it
//
// The body is read whole and its checksum verified before it is parsed, and
// the parser checks every count against the bytes left, so a damaged file
// cannot make Load allocate wildly or panic.
const (
	snapMagic     = "FMIX"
	snapVersion   = 1
	snapHeaderLen = 16
	kindLexical   = 'L'
	kindVector    = 'V'
	// maxSnapBody is far above any real index (a million 384-dimensional
	// vectors are ~1.6 GB) and exists only to reject absurd lengths.
	maxSnapBody = 1 << 40
)

func writeSnapshot(w io.Writer, kind byte, body []byte) error {
	var hdr [snapHeaderLen]byte
	copy(hdr[:4], snapMagic)
	hdr[4] = kind
	hdr[5] = snapVersion
	binary.LittleEndian.PutUint64(hdr[8:], uint64(len(body)))
	h := sha256.New()
	h.Write(hdr[:])
	h.Write(body)
	for _, b := range [][]byte{hdr[:], body, h.Sum(nil)} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("index: write snapshot: %w", err)
		}
	}
	return nil
}

// readSnapshot returns the verified body of a snapshot of the given kind.
func readSnapshot(r io.Reader, kind byte) ([]byte, error) {
	var hdr [snapHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: read header: %w", ErrCorrupt, err)
	}
	switch {
	case string(hdr[:4]) != snapMagic:
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	case hdr[4] != kind:
		return nil, fmt.Errorf("%w: kind %q, want %q", ErrCorrupt, hdr[4], kind)
	case hdr[5] != snapVersion:
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrCorrupt, hdr[5], snapVersion)
	case hdr[6] != 0 || hdr[7] != 0:
		return nil, fmt.Errorf("%w: reserved header bytes set", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint64(hdr[8:])
	if n > maxSnapBody {
		return nil, fmt.Errorf("%w: body length %d", ErrCorrupt, n)
	}
	// The buffer grows as bytes actually arrive, so a lying length costs
	// nothing beyond the real input.
	var buf bytes.Buffer
	buf.Grow(int(min(n, 16<<20)))
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrCorrupt, err)
	}
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: read checksum: %w", ErrCorrupt, err)
	}
	h := sha256.New()
	h.Write(hdr[:])
	h.Write(buf.Bytes())
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return buf.Bytes(), nil
}

// encoder appends varint-framed values.
type encoder struct{ b []byte }

func (e *encoder) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) f32s(v []float32) {
	for _, x := range v {
		e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(x))
	}
}

// decoder reads what encoder wrote. The first error sticks and later reads
// return zero values, so callers check err once per record.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a number of records, each at least minSize bytes, and rejects
// it if the rest of the body cannot hold them.
func (d *decoder) count(what string, minSize int) int {
	x := d.uvarint()
	if d.err == nil && x > uint64(len(d.b)/minSize) {
		d.fail("%s count %d exceeds the data", what, x)
		return 0
	}
	return int(x)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string length %d exceeds the data", n)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("unexpected end of body")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// f32s fills dst and reports a non-finite value as corruption.
func (d *decoder) f32s(dst []float32) {
	if d.err != nil {
		return
	}
	if len(d.b) < 4*len(dst) {
		d.fail("unexpected end of body")
		return
	}
	for i := range dst {
		x := math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			d.fail("non-finite vector component")
			return
		}
		dst[i] = x
	}
	d.b = d.b[4*len(dst):]
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// Lexical body:
//
//	terms  count, then each term string
//	docs   count, then per doc: id string, distinct-term count, then per
//	       term: term number (into the list above), frequency
//
// Postings and lengths are rebuilt from the documents on Load.

// Save writes a snapshot of the index to w.
func (l *Lexical) Save(w io.Writer) error {
	l.mu.RLock()
	body := l.encodeLocked()
	l.mu.RUnlock()
	return writeSnapshot(w, kindLexical, body)
}

func (l *Lexical) encodeLocked() []byte {
	var e encoder
	renum := make([]uint32, len(l.terms))
	var live uint32
	for t := range l.terms {
		if len(l.postings[t]) > 0 {
			renum[t] = live
			live++
		}
	}
	e.uvarint(uint64(live))
	for t, term := range l.terms {
		if len(l.postings[t]) > 0 {
			e.str(term)
		}
	}
	e.uvarint(uint64(len(l.byID)))
	for d, doc := range l.docs {
		if n, ok := l.byID[doc.id]; !ok || n != uint32(d) {
			continue // a free slot
		}
		e.str(doc.id)
		e.uvarint(uint64(len(doc.terms)))
		for _, t := range doc.terms {
			i, _ := slices.BinarySearchFunc(l.postings[t], uint32(d), cmpPostingDoc)
			e.uvarint(uint64(renum[t]))
			e.uvarint(uint64(l.postings[t][i].tf))
		}
	}
	return e.b
}

// Load replaces the index with the snapshot read from r. On error the index
// is unchanged and the error wraps ErrCorrupt (whatever went wrong, the
// remedy is a rebuild).
func (l *Lexical) Load(r io.Reader) error {
	body, err := readSnapshot(r, kindLexical)
	if err != nil {
		return fmt.Errorf("load lexical index: %w", err)
	}
	fresh, err := decodeLexical(body)
	if err != nil {
		return fmt.Errorf("load lexical index: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.vocab, l.terms, l.postings, l.freeTerm = fresh.vocab, fresh.terms, fresh.postings, fresh.freeTerm
	l.docs, l.byID, l.freeDoc, l.totalLen = fresh.docs, fresh.byID, fresh.freeDoc, fresh.totalLen
	return nil
}

func decodeLexical(body []byte) (*Lexical, error) {
	d := &decoder{b: body}
	nTerms := d.count("term", 1)
	terms := make([]string, nTerms)
	seen := make(map[string]bool, nTerms)
	for i := range terms {
		terms[i] = d.str()
		if d.err == nil && (terms[i] == "" || seen[terms[i]]) {
			d.fail("empty or repeated term %q", terms[i])
		}
		seen[terms[i]] = true
	}
	if d.err != nil {
		return nil, d.err
	}
	fresh := NewLexical()
	nDocs := d.count("document", 2)
	inDoc := make([]int, nTerms) // term number → 1 + index of the last doc using it
	var (
		docTerms []string
		docTFs   []uint32
	)
	for i := 0; i < nDocs && d.err == nil; i++ {
		id := d.str()
		nt := d.count("document term", 2)
		docTerms, docTFs = docTerms[:0], docTFs[:0]
		var length uint64
		for j := 0; j < nt && d.err == nil; j++ {
			t, tf := d.uvarint(), d.uvarint()
			switch {
			case d.err != nil:
			case t >= uint64(nTerms):
				d.fail("term number %d out of range", t)
			case inDoc[t] == i+1:
				d.fail("term %q repeated in document %q", terms[t], id)
			case tf == 0 || tf > math.MaxUint32:
				d.fail("term frequency %d", tf)
			default:
				inDoc[t] = i + 1
				docTerms = append(docTerms, terms[t])
				docTFs = append(docTFs, uint32(tf))
				length += tf
			}
		}
		if d.err != nil {
			break
		}
		if _, dup := fresh.byID[id]; dup {
			d.fail("document %q repeated", id)
			break
		}
		if length > math.MaxUint32 {
			d.fail("document %q too long", id)
			break
		}
		fresh.insertLocked(id, docTerms, docTFs, uint32(length))
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return fresh, nil
}

// Vector body:
//
//	dim, M, EfConstruction (the options it was built with; informational)
//	node count, entry node, top layer + 1 (0 = empty graph)
//	per node: live flag byte, id string ("" when tombstoned), level,
//	          dim float32s, then per layer 0..level: link count, links
//
// The graph is restored as saved; the index's own options apply to what is
// added after.

// Save writes a snapshot of the index to w. Writers wait while the index is
// encoded (readers do not); the bytes are written to w afterwards.
func (v *Vector) Save(w io.Writer) error {
	v.mu.RLock()
	body := v.encodeLocked()
	v.mu.RUnlock()
	return writeSnapshot(w, kindVector, body)
}

func (v *Vector) encodeLocked() []byte {
	g := v.g
	e := encoder{b: make([]byte, 0, g.len()*(4*v.dim+24*g.m+32)+64)}
	e.uvarint(uint64(v.dim))
	e.uvarint(uint64(g.m))
	e.uvarint(uint64(g.efC))
	e.uvarint(uint64(g.len()))
	e.uvarint(uint64(g.entry))
	e.uvarint(uint64(g.top + 1))
	for n := range g.vecs {
		if v.live[n] {
			e.b = append(e.b, 1)
			e.str(v.ids[n])
		} else {
			e.b = append(e.b, 0)
			e.str("")
		}
		e.uvarint(uint64(len(g.links[n]) - 1))
		e.f32s(g.vecs[n])
		for _, ls := range g.links[n] {
			e.uvarint(uint64(len(ls)))
			for _, m := range ls {
				e.uvarint(uint64(m))
			}
		}
	}
	return e.b
}

// Load replaces the index with the snapshot read from r. A snapshot of
// another dimension is refused. On error the index is unchanged and the
// error wraps ErrCorrupt.
func (v *Vector) Load(r io.Reader) error {
	body, err := readSnapshot(r, kindVector)
	if err != nil {
		return fmt.Errorf("load vector index: %w", err)
	}
	v.wmu.Lock()
	defer v.wmu.Unlock()
	fresh, err := v.decode(body)
	if err != nil {
		return fmt.Errorf("load vector index: %w", err)
	}
	v.mu.Lock()
	v.g, v.ids, v.live, v.byID, v.dead = fresh.g, fresh.ids, fresh.live, fresh.byID, fresh.dead
	v.mu.Unlock()
	return nil
}

func (v *Vector) decode(body []byte) (*Vector, error) {
	d := &decoder{b: body}
	dim, _, _ := d.uvarint(), d.uvarint(), d.uvarint()
	if d.err == nil && dim != uint64(v.dim) {
		return nil, fmt.Errorf("%w: dimension %d, index has %d", ErrCorrupt, dim, v.dim)
	}
	// A node is at least: flag, id length, level, vector, one link count.
	n := d.count("node", 4+4*v.dim)
	entry, top := d.uvarint(), int64(d.uvarint())-1
	if d.err != nil {
		return nil, d.err
	}
	switch {
	case n == 0 && top != -1, n > 0 && (top < 0 || entry >= uint64(n)):
		return nil, fmt.Errorf("%w: entry %d, top layer %d for %d nodes", ErrCorrupt, entry, top, n)
	case top > maxLevel:
		return nil, fmt.Errorf("%w: top layer %d", ErrCorrupt, top)
	}

	fresh := &Vector{
		dim:  v.dim,
		g:    newGraph(v.dim, v.opts.M, v.opts.EfConstruction, v.opts.Seed),
		ids:  make([]string, n),
		live: make([]bool, n),
		byID: make(map[string]uint32, n),
	}
	g := fresh.g
	g.vecs = make([][]float32, 0, n)
	g.links = make([][][]uint32, 0, n)
	vec := make([]float32, v.dim)
	for i := 0; i < n && d.err == nil; i++ {
		live, id := d.byte(), d.str()
		level := d.uvarint()
		if d.err == nil && (live > 1 || level > uint64(top)) {
			d.fail("node %d: live flag %d, level %d", i, live, level)
		}
		d.f32s(vec)
		if d.err != nil {
			break
		}
		ls := make([][]uint32, level+1)
		for l := range ls {
			cnt := d.count("link", 1)
			ls[l] = make([]uint32, 0, max(cnt, g.maxLinks(l)))
			for j := 0; j < cnt && d.err == nil; j++ {
				m := d.uvarint()
				if d.err == nil && m >= uint64(n) {
					d.fail("node %d: link to %d of %d nodes", i, m, n)
				}
				ls[l] = append(ls[l], uint32(m))
			}
		}
		if live == 1 {
			if _, dup := fresh.byID[id]; dup {
				d.fail("id %q repeated", id)
			}
			fresh.byID[id] = uint32(i)
			fresh.ids[i], fresh.live[i] = id, true
		} else {
			fresh.dead++
		}
		g.vecs = append(g.vecs, g.storeVec(vec))
		g.links = append(g.links, ls)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	// A link on layer l must lead to a node that exists on layer l, or a
	// search would index past the target's layers.
	for i, ls := range g.links {
		for l, links := range ls {
			for _, m := range links {
				if len(g.links[m]) <= l {
					return nil, fmt.Errorf("%w: node %d: layer %d link to node %d of level %d", ErrCorrupt, i, l, m, len(g.links[m])-1)
				}
			}
		}
	}
	if n > 0 {
		if len(g.links[entry]) != int(top)+1 {
			return nil, fmt.Errorf("%w: entry node %d is not on the top layer", ErrCorrupt, entry)
		}
		g.entry, g.top = uint32(entry), int(top)
	}
	return fresh, nil
}
