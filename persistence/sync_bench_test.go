package persistence

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSyncedWrite is one synced 1 KiB write at a time on local disk:
// through Pebble (Keyspace.Set with sync), and as a plain append plus
// fdatasync to a preallocated file (what fmload's durable floor does per
// round). It separates what Pebble adds to a sync from what the disk costs.
func BenchmarkSyncedWrite(b *testing.B) {
	val := make([]byte, 1024)
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
		b.ReportMetric(q(0.5), "p50-µs")
		b.ReportMetric(q(0.99), "p99-µs")
	}
	b.Run("pebble", func(b *testing.B) {
		s, err := Open(b.TempDir(), &Options{NoBlobs: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ks, _ := s.Keyspace(SpaceCase)
		lat := make([]time.Duration, 0, b.N)
		i := 0
		for b.Loop() {
			start := time.Now()
			if err := ks.Set([]byte(fmt.Sprintf("k%09d", i)), val, true); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			i++
		}
		report(b, lat)
	})
	b.Run("append+fdatasync", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 64<<20)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if _, err := f.Write(val); err != nil {
				b.Fatal(err)
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
}
