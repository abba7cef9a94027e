package index

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"testing"
)

func buildLexical() *Lexical {
	l := NewLexical()
	for i := 0; i < 60; i++ {
		l.Add(benchID(i), fmt.Sprintf("pod-%d OOMKilled on node %d after %d restarts; see nginx.conf", i%9, i%4, i))
	}
	for i := 0; i < 60; i += 7 { // leave free slots behind
		l.Remove(benchID(i))
	}
	l.Add("replaced", "certificate expired")
	return l
}

func buildVector(seed int64) *Vector {
	r := rand.New(rand.NewSource(seed))
	v := NewVector(8, graphOnly)
	for i := 0; i < 300; i++ {
		v.Add(benchID(i), randomUnit(r, 8))
	}
	for i := 0; i < 300; i += 11 { // tombstones, below the rebuild threshold
		v.Remove(benchID(i))
	}
	return v
}

// snapshot returns what save writes.
func snapshot(t testing.TB, save func(io.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := save(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLexicalSnapshotRoundTrip(t *testing.T) {
	l := buildLexical()
	snap := snapshot(t, l.Save)
	got := NewLexical()
	got.Add("stale", "must disappear on load")
	if err := got.Load(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if got.Len() != l.Len() {
		t.Fatalf("Len = %d, want %d", got.Len(), l.Len())
	}
	for _, q := range []string{"oomkilled", "pod-3 node", "nginx", "restarts 17", "certificate", "stale"} {
		want, have := l.Search(q, 10, nil), got.Search(q, 10, nil)
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("query %q: loaded %v, original %v", q, have, want)
		}
	}
	checkLexicalInvariants(t, got)
	// The loaded index is a normal index: it takes writes and saves again
	// to the same content.
	got.Add("new", "fresh chunk")
	got.Remove("new")
	if again := snapshot(t, got.Save); len(again) == 0 {
		t.Fatal("empty snapshot")
	}
	// An empty index round-trips too.
	empty := NewLexical()
	if err := empty.Load(bytes.NewReader(snapshot(t, NewLexical().Save))); err != nil || empty.Len() != 0 {
		t.Fatalf("empty round trip: %v, Len %d", err, empty.Len())
	}
}

func TestVectorSnapshotRoundTrip(t *testing.T) {
	v := buildVector(testSeed(t))
	snap := snapshot(t, v.Save)
	got := NewVector(8, graphOnly)
	if err := got.Load(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if got.Len() != v.Len() || got.dead != v.dead {
		t.Fatalf("Len %d dead %d, want %d and %d", got.Len(), got.dead, v.Len(), v.dead)
	}
	if !reflect.DeepEqual(got.g.links, v.g.links) || !reflect.DeepEqual(got.g.vecs, v.g.vecs) ||
		got.g.entry != v.g.entry || got.g.top != v.g.top {
		t.Fatal("graph differs after round trip")
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		q := randomUnit(r, 8)
		if want, have := v.Search(q, 10, nil), got.Search(q, 10, nil); !reflect.DeepEqual(want, have) {
			t.Fatalf("loaded %v, original %v", have, want)
		}
	}
	if err := got.Add("after-load", randomUnit(r, 8)); err != nil {
		t.Fatal(err)
	}
	empty := NewVector(8, VectorOptions{})
	if err := empty.Load(bytes.NewReader(snapshot(t, NewVector(8, VectorOptions{}).Save))); err != nil || empty.Len() != 0 {
		t.Fatalf("empty round trip: %v, Len %d", err, empty.Len())
	}
	if hits := empty.Search(randomUnit(r, 8), 3, nil); hits != nil {
		t.Fatalf("empty loaded index returned %v", hits)
	}
}

// TestSnapshotCorrupt truncates and bit-flips valid snapshots: every damaged
// copy must be refused with ErrCorrupt and leave the index untouched.
func TestSnapshotCorrupt(t *testing.T) {
	lexSnap := snapshot(t, buildLexical().Save)
	vecSnap := snapshot(t, buildVector(1).Save)

	type target struct {
		name string
		snap []byte
		load func([]byte) error
		len  func() int
	}
	l := NewLexical()
	l.Add("keep", "existing content")
	v := NewVector(8, VectorOptions{})
	v.Add("keep", randomUnit(rand.New(rand.NewSource(2)), 8))
	targets := []target{
		{"lexical", lexSnap, func(b []byte) error { return l.Load(bytes.NewReader(b)) }, l.Len},
		{"vector", vecSnap, func(b []byte) error { return v.Load(bytes.NewReader(b)) }, v.Len},
	}
	r := rand.New(rand.NewSource(testSeed(t)))
	for _, tg := range targets {
		check := func(what string, b []byte) {
			t.Helper()
			if err := tg.load(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s, %s: err = %v, want ErrCorrupt", tg.name, what, err)
			}
			if tg.len() != 1 {
				t.Fatalf("%s, %s: index changed by a failed load", tg.name, what)
			}
		}
		for n := 0; n < len(tg.snap); n += 1 + n/16 {
			check(fmt.Sprintf("truncated to %d bytes", n), tg.snap[:n])
		}
		check("last byte missing", tg.snap[:len(tg.snap)-1])
		for i := 0; i < 200; i++ {
			b := bytes.Clone(tg.snap)
			pos := r.Intn(len(b))
			b[pos] ^= 1 << r.Intn(8)
			check(fmt.Sprintf("bit flip at %d", pos), b)
		}
	}
	// Valid snapshots of the wrong kind or dimension are refused too.
	if err := l.Load(bytes.NewReader(vecSnap)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("vector snapshot into lexical: %v", err)
	}
	if err := v.Load(bytes.NewReader(lexSnap)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lexical snapshot into vector: %v", err)
	}
	if err := NewVector(16, VectorOptions{}).Load(bytes.NewReader(vecSnap)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("dimension 8 snapshot into dimension 16 index: %v", err)
	}
	// A body with a valid checksum but a bad structure is caught by the
	// parser, not trusted because of its checksum.
	var buf bytes.Buffer
	writeSnapshot(&buf, kindVector, []byte{8, 16, 200, 1, 5, 1}) // entry 5 of 1 node
	if err := v.Load(&buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad body with good checksum: %v", err)
	}
}

// FuzzLoadSnapshot feeds arbitrary bytes to both loaders, raw and wrapped in
// a valid header and checksum so that the body parsers see them too. Load
// may refuse (with ErrCorrupt only) but must never panic, and whatever it
// accepts must be a working index.
func FuzzLoadSnapshot(f *testing.F) {
	lexSnap := snapshot(f, buildLexical().Save)
	vecSnap := snapshot(f, buildVector(1).Save)
	f.Add(lexSnap)
	f.Add(vecSnap)
	f.Add(lexSnap[snapHeaderLen : len(lexSnap)-32]) // bare bodies
	f.Add(vecSnap[snapHeaderLen : len(vecSnap)-32])
	f.Add(lexSnap[:20])
	f.Add([]byte{})
	f.Add([]byte("FMIX"))
	f.Fuzz(func(t *testing.T, data []byte) {
		framed := func(kind byte) []byte {
			var buf bytes.Buffer
			writeSnapshot(&buf, kind, data)
			return buf.Bytes()
		}
		for _, in := range [][]byte{data, framed(kindLexical)} {
			l := NewLexical()
			err := l.Load(bytes.NewReader(in))
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("lexical: %v is not ErrCorrupt", err)
				}
				continue
			}
			l.Search("pod oomkilled nginx", 5, nil)
			l.Add("fuzz", "pod restarted")
			l.Remove("fuzz")
			checkLexicalInvariants(t, l)
		}
		for _, in := range [][]byte{data, framed(kindVector)} {
			v := NewVector(8, graphOnly)
			err := v.Load(bytes.NewReader(in))
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("vector: %v is not ErrCorrupt", err)
				}
				continue
			}
			q := []float32{1, 0, 0, 0, 0, 0, 0, 0}
			v.Search(q, 5, nil)
			v.Search(q, 5, func(id string) bool { return len(id)%2 == 0 })
			if err := v.Add("fuzz", q); err != nil {
				t.Fatal(err)
			}
			v.Remove("fuzz")
			var buf bytes.Buffer
			if err := v.Save(&buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}
