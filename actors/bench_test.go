package actors

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/actors/casepb"
	"github.com/faultmaven/faultmaven/internal/procstat"
)

// seedCases writes n cases with events events each straight into the store
// with unsynced batches (fast set-up; the benchmarks measure what follows).
func seedCases(b testing.TB, st *caseStore, owner string, n, events int) []string {
	b.Helper()
	ids := make([]string, n)
	batch := st.ks.NewBatch()
	now := time.Now()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("case_%026d", i)
		ids[i] = id
		s := newCaseState()
		var evs []*casepb.Event
		ev := s.newEvent(now, owner)
		ev.Kind = &casepb.Event_Created{Created: &casepb.CaseCreated{CaseId: id, Owner: owner, Title: "Case-seed"}}
		_ = s.apply(ev)
		evs = append(evs, ev)
		for j := 1; j < events; j++ {
			e := s.newEvent(now, owner)
			e.Kind = &casepb.Event_TitleChanged{TitleChanged: &casepb.TitleChanged{Title: "t" + strconv.Itoa(j), Source: "user"}}
			_ = s.apply(e)
			evs = append(evs, e)
		}
		if err := st.stageEvents(batch, s, evs); err != nil {
			b.Fatal(err)
		}
		if err := batch.Set(ownerKey(owner, fromNano(s.snap.CreatedAtUnixNano), id), nil); err != nil {
			b.Fatal(err)
		}
		if err := batch.Set(indexedKey(id), []byte("1")); err != nil { // as createCase writes it
			b.Fatal(err)
		}
		if batch.Len() > 5000 {
			if err := batch.Commit(false); err != nil {
				b.Fatal(err)
			}
			batch = st.ks.NewBatch()
		}
	}
	if err := batch.Commit(true); err != nil {
		b.Fatal(err)
	}
	return ids
}

func rssBytes() int64 {
	v, _ := procstat.StatusBytes(os.Getpid(), "VmRSS")
	return v
}

// BenchmarkIdleActorMemory activates N cases (each loaded into its actor)
// and reports resident and heap memory per idle case actor.
func BenchmarkIdleActorMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			sys := startCases(b, b.TempDir(), Config{CaseIdle: time.Hour})
			ids := seedCases(b, sys.cases.d.store, "usr_bench", n, 1)
			ctx := context.Background()
			runtime.GC()
			debug.FreeOSMemory()
			var ms0 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			rss0 := rssBytes()
			b.ResetTimer()
			for _, id := range ids {
				if _, err := sys.cases.View(ctx, "usr_bench", id); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.GC()
			debug.FreeOSMemory()
			var ms1 runtime.MemStats
			runtime.ReadMemStats(&ms1)
			rss1 := rssBytes()
			b.ReportMetric(float64(rss1-rss0)/float64(n), "rss-B/actor")
			b.ReportMetric(float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/float64(n), "heap-B/actor")
			b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		})
	}
}

// BenchmarkRehydrate measures the first request to a passive case with 200
// events (snapshot every 64): spawn + load snapshot + replay tail + answer.
func BenchmarkRehydrate(b *testing.B) {
	sys := startCases(b, b.TempDir(), Config{CaseIdle: time.Hour})
	const n = 2000
	ids := seedCases(b, sys.cases.d.store, "usr_bench", n, 200)
	ctx := context.Background()
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for _, id := range ids {
		t0 := time.Now()
		v, err := sys.cases.View(ctx, "usr_bench", id)
		lat = append(lat, time.Since(t0))
		if err != nil || v.Seq != 200 {
			b.Fatalf("view: %v seq %d", err, v.Seq)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	// The load itself, without the actor round trip.
	ll := make([]time.Duration, 0, 500)
	for _, id := range ids[:500] {
		t0 := time.Now()
		if _, err := sys.cases.d.store.load(id); err != nil {
			b.Fatal(err)
		}
		ll = append(ll, time.Since(t0))
	}
	slices.Sort(ll)
	b.ReportMetric(float64(ll[len(ll)/2].Microseconds()), "load-p50-µs")
	b.ReportMetric(float64(ll[len(ll)*99/100].Microseconds()), "load-p99-µs")
}

// BenchmarkAppend measures synced, acknowledged events per second with C
// cases written concurrently (one writer per case, Pebble group commit).
func BenchmarkAppend(b *testing.B) {
	for _, c := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("cases=%d", c), func(b *testing.B) {
			sys := startCases(b, b.TempDir(), Config{CaseIdle: time.Hour})
			ctx := context.Background()
			ids := make([]string, c)
			for i := range ids {
				r, err := sys.cases.Create(ctx, CreateCase{Owner: "usr_bench"})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = r.CaseID
			}
			const dur = 3 * time.Second
			var total atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for _, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; time.Since(start) < dur; i++ {
						if _, err := sys.cases.Rename(ctx, "usr_bench", id, "t"+strconv.Itoa(i)); err != nil {
							b.Error(err)
							return
						}
						total.Add(1)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(total.Load())/el.Seconds(), "events/s")
		})
	}
}
