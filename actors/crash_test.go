package actors

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/faultmaven/faultmaven/persistence"
)

// TestAcknowledgedEventsSurviveCrash runs case writers on Pebble's
// crash-simulating filesystem, takes a crash image (only synced data is
// guaranteed in it) while they are writing, and checks that every change that
// was acknowledged before the image was taken is in the recovered database,
// and that every recovered case loads cleanly.
func TestAcknowledgedEventsSurviveCrash(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	for round := 0; round < 5; round++ {
		fs := vfs.NewCrashableMem()
		st, err := persistence.Open("/data", &persistence.Options{FS: fs, NoBlobs: true})
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := st.Keyspace(persistence.SpaceCase)
		c, err := NewCases(Config{SnapshotEvery: 8}, Deps{Keyspace: ks})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()

		type ack struct {
			id    string
			title string
			seq   int
		}
		var mu sync.Mutex
		acked := map[string]ack{} // case id → last acknowledged rename
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := c.Create(ctx, CreateCase{Owner: "usr_a"})
				if err != nil {
					t.Error(err)
					return
				}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					title := fmt.Sprintf("w%d-%d", w, i)
					if _, err := c.Rename(ctx, "usr_a", r.CaseID, title); err != nil {
						return // the store may be closing
					}
					mu.Lock()
					acked[r.CaseID] = ack{id: r.CaseID, title: title, seq: i + 2}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
		// Freeze what was acknowledged, then take the crash image: every
		// acknowledgement recorded here happened before the clone.
		mu.Lock()
		snapshot := map[string]ack{}
		for k, v := range acked {
			snapshot[k] = v
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(60), RNG: rand.New(rand.NewPCG(uint64(seed), uint64(round)))})
		mu.Unlock()
		close(stop)
		wg.Wait()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = c.Shutdown(sctx)
		cancel()
		_ = st.Close()

		st2, err := persistence.Open("/data", &persistence.Options{FS: crashed, NoBlobs: true})
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		ks2, _ := st2.Keyspace(persistence.SpaceCase)
		store := &caseStore{ks: ks2, snapEvery: 8}
		if len(snapshot) == 0 {
			t.Fatalf("round %d: nothing was acknowledged before the crash", round)
		}
		for id, a := range snapshot {
			s, err := store.load(id)
			if err != nil {
				t.Fatalf("round %d: load %s: %v", round, id, err)
			}
			if int(s.snap.Seq) < a.seq {
				t.Fatalf("round %d: case %s recovered seq %d < acknowledged %d", round, id, s.snap.Seq, a.seq)
			}
			row, err := store.row(id)
			if err != nil || int(row.UpdatedAt.UnixNano()) != int(s.snap.UpdatedAtUnixNano) || row.Title != s.snap.Title {
				t.Fatalf("round %d: row projection disagrees with the log: %+v vs %+v (%v)", round, row, s.snap, err)
			}
		}
		_ = st2.Close()
	}
}
