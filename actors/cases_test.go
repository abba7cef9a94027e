package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/persistence"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testSys struct {
	cases *Cases
	store *persistence.Store
	dir   string
}

func openTestStore(t testing.TB, dir string) *persistence.Store {
	t.Helper()
	st, err := persistence.Open(dir, &persistence.Options{NoBlobs: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func startCases(t testing.TB, dir string, cfg Config) *testSys {
	t.Helper()
	st := openTestStore(t, dir)
	ks, err := st.Keyspace(persistence.SpaceCase)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCases(cfg, Deps{Keyspace: ks})
	if err != nil {
		t.Fatal(err)
	}
	sys := &testSys{cases: c, store: st, dir: dir}
	t.Cleanup(sys.stop)
	return sys
}

func (s *testSys) stop() {
	if s.cases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.cases.Shutdown(ctx)
	_ = s.store.Close()
	s.cases = nil
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCaseLifecycle(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{})
	ctx := context.Background()
	c := sys.cases
	r, err := c.Create(ctx, CreateCase{Owner: "usr_a"})
	if err != nil {
		t.Fatal(err)
	}
	wantTitle := "Case-" + time.Now().UTC().Format("060102") + "-1"
	if r.Title != wantTitle || r.State != StatusInquiry || r.UserID != "usr_a" {
		t.Fatalf("created row %+v, want title %s", r, wantTitle)
	}
	r2, err := c.Create(ctx, CreateCase{Owner: "usr_a"})
	if err != nil || r2.Title != "Case-"+time.Now().UTC().Format("060102")+"-2" {
		t.Fatalf("second case %+v %v", r2, err)
	}
	if r, err = c.Rename(ctx, "usr_a", r.CaseID, "API 502s after deploy"); err != nil || r.Title != "API 502s after deploy" {
		t.Fatalf("rename: %+v %v", r, err)
	}
	if r, err = c.ChangeStatus(ctx, "usr_a", r.CaseID, StatusInvestigating, "start", ""); err != nil || r.State != StatusInvestigating {
		t.Fatalf("investigate: %+v %v", r, err)
	}
	if r, err = c.ChangeStatus(ctx, "usr_a", r.CaseID, StatusClosed, "gave up", "solution_deferred"); err != nil {
		t.Fatal(err)
	}
	if r.ClosureReason == nil || *r.ClosureReason != "solution_deferred" || r.ClosedAt == nil {
		t.Fatalf("closed row: %+v", r)
	}
	v1, err := c.View(ctx, "usr_a", r.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ChangeStatus(ctx, "usr_a", r.CaseID, StatusClosed, "again", ""); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("closing a closed case: %v", err)
	}
	v2, _ := c.View(ctx, "usr_a", r.CaseID)
	if len(v2.StatusHistory) != len(v1.StatusHistory) || v2.Seq != v1.Seq {
		t.Fatalf("history changed by a refused transition: %+v vs %+v", v1.StatusHistory, v2.StatusHistory)
	}
	got, err := c.Get(ctx, "usr_a", r.CaseID)
	if err != nil || got.State != StatusClosed || got.Title != "API 502s after deploy" {
		t.Fatalf("get: %+v %v", got, err)
	}
	rows, total, err := c.List(ctx, "usr_a", 10, 0)
	if err != nil || total != 2 || len(rows) != 2 || rows[0].CaseID != r2.CaseID {
		t.Fatalf("list newest first: %v %d %v", rows, total, err)
	}
	if rows, total, _ = c.List(ctx, "usr_a", 1, 1); len(rows) != 1 || total != 2 || rows[0].CaseID != r.CaseID {
		t.Fatalf("list page 2: %v %d", rows, total)
	}
}

func TestOtherOwnerGetsNotFound(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{})
	ctx := context.Background()
	c := sys.cases
	r, err := c.Create(ctx, CreateCase{Owner: "usr_a"})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{}
	_, checks["get"] = c.Get(ctx, "usr_b", r.CaseID)
	_, checks["view"] = c.View(ctx, "usr_b", r.CaseID)
	_, _, checks["messages"] = c.Messages(ctx, "usr_b", r.CaseID, 10, 0)
	_, checks["rename"] = c.Rename(ctx, "usr_b", r.CaseID, "mine now")
	_, checks["status"] = c.ChangeStatus(ctx, "usr_b", r.CaseID, StatusClosed, "", "")
	checks["delete"] = c.Delete(ctx, "usr_b", r.CaseID)
	for name, err := range checks {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s by another user: %v, want ErrNotFound", name, err)
		}
	}
	if rows, total, _ := c.List(ctx, "usr_b", 10, 0); total != 0 || len(rows) != 0 {
		t.Errorf("user b lists a's case: %v", rows)
	}
	got, err := c.Get(ctx, "usr_a", r.CaseID)
	if err != nil || got.Title != r.Title || got.State != StatusInquiry {
		t.Fatalf("a's case changed: %+v %v", got, err)
	}
	for _, id := range []string{"", "case_../../x", "nonsense", "case_" + "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"} {
		if _, err := c.View(ctx, "usr_a", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("view %q: %v", id, err)
		}
	}
}

func TestIdempotentCreate(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := sys.cases.Create(ctx, CreateCase{Owner: "usr_a", IdempotencyKey: "opt_case_123_1"})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.CaseID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("replays made different cases: %v", ids)
		}
	}
	if _, total, _ := sys.cases.List(ctx, "usr_a", 10, 0); total != 1 {
		t.Fatalf("total = %d", total)
	}
	// The same key from another user is another case.
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_b", IdempotencyKey: "opt_case_123_1"})
	if r.CaseID == ids[0] {
		t.Fatal("idempotency key leaked across users")
	}
	if _, err := sys.cases.Create(ctx, CreateCase{Owner: "usr_a", IdempotencyKey: "bad key!"}); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("bad key: %v", err)
	}
}

func TestDeleteRemovesEverything(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a", IdempotencyKey: "delete-me-key"})
	if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, "x"); err != nil {
		t.Fatal(err)
	}
	if err := sys.cases.Delete(ctx, "usr_a", r.CaseID); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.cases.Get(ctx, "usr_a", r.CaseID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	checkFor(t, 5*time.Second, func() error {
		if _, err := sys.cases.View(ctx, "usr_a", r.CaseID); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("view after delete: %v", err)
		}
		return nil
	})
	if _, total, _ := sys.cases.List(ctx, "usr_a", 10, 0); total != 0 {
		t.Fatalf("list after delete: %d", total)
	}
	if err := sys.cases.Delete(ctx, "usr_a", r.CaseID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The idempotency key is free again.
	r2, err := sys.cases.Create(ctx, CreateCase{Owner: "usr_a", IdempotencyKey: "delete-me-key"})
	if err != nil || r2.CaseID == r.CaseID {
		t.Fatalf("recreate: %+v %v", r2, err)
	}
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	sys := startCases(t, dir, Config{SnapshotEvery: 4})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	for i := 0; i < 10; i++ {
		if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, fmt.Sprintf("title %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sys.cases.ChangeStatus(ctx, "usr_a", r.CaseID, StatusInvestigating, "go", ""); err != nil {
		t.Fatal(err)
	}
	before, _ := sys.cases.View(ctx, "usr_a", r.CaseID)
	sys.stop()

	sys2 := startCases(t, dir, Config{SnapshotEvery: 4})
	after, err := sys2.cases.View(ctx, "usr_a", r.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Seq != before.Seq || after.Row.Title != "title 9" || after.Row.State != StatusInvestigating || len(after.StatusHistory) != 1 {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
}

func TestPassivationAndRehydration(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{CaseIdle: 20 * time.Millisecond})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, "one"); err != nil {
		t.Fatal(err)
	}
	m := sys.cases.d.metrics
	checkFor(t, 5*time.Second, func() error {
		if got := counterValue(m.passivations); got < 1 {
			return fmt.Errorf("passivations = %v", got)
		}
		return nil
	})
	// Hammer the case while it keeps passivating: nothing may be lost or
	// reordered, every rename must be answered.
	for i := 0; i < 50; i++ {
		if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, fmt.Sprintf("t%d", i)); err != nil {
			t.Fatalf("rename %d: %v", i, err)
		}
		if i%10 == 0 {
			time.Sleep(25 * time.Millisecond)
		}
	}
	v, err := sys.cases.View(ctx, "usr_a", r.CaseID)
	if err != nil || v.Row.Title != "t49" || v.Seq != 52 {
		t.Fatalf("view %+v %v", v, err)
	}
	if counterValue(m.activations) < 2 {
		t.Fatalf("expected reactivations, got %v", counterValue(m.activations))
	}
}

func TestConcurrentRequestsDuringPassivation(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{CaseIdle: time.Millisecond})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	var wg sync.WaitGroup
	const workers, each = 8, 25
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, fmt.Sprintf("w%d-%d", w, i)); err != nil {
					t.Errorf("rename: %v", err)
					return
				}
				if i%5 == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	v, err := sys.cases.View(ctx, "usr_a", r.CaseID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Seq != 1+workers*each {
		t.Fatalf("seq = %d, want %d (every acknowledged rename is one event)", v.Seq, 1+workers*each)
	}
}

// TestShutdownRightAfterDelete: a case that is stopping (deleted) when the
// system shuts down must not make Shutdown wait forever.
func TestShutdownRightAfterDelete(t *testing.T) {
	for i := 0; i < 30; i++ {
		sys := startCases(t, t.TempDir(), Config{})
		ctx := context.Background()
		r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
		if _, err := sys.cases.View(ctx, "usr_a", r.CaseID); err != nil {
			t.Fatal(err)
		}
		if err := sys.cases.Delete(ctx, "usr_a", r.CaseID); err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := sys.cases.Shutdown(sctx)
		cancel()
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		sys.stop()
	}
}

// TestSubscriptionsSurvivePassivationRaces: a case that just said it is
// idle must not stop once a subscribe has reached it, or the subscriber
// would be registered with an actor about to vanish and miss every later
// frame. (A direct route to active case actors, bypassing casemgr, failed
// this test until it re-checked for such requests before stopping; that
// route was then dropped as it measured no faster.)
func TestSubscriptionsSurvivePassivationRaces(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{CaseIdle: time.Millisecond})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	m := sys.cases.d.metrics
	for i := 0; i < 150; i++ {
		sub := &collector{}
		if _, err := sys.cases.Subscribe(ctx, "usr_a", r.CaseID, 1<<40, sub); err != nil {
			t.Fatalf("subscribe %d: %v", i, err)
		}
		// Give the idle sweep (every 1 ms) a chance to stop the case.
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		title := fmt.Sprintf("t%d", i)
		if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, title); err != nil {
			t.Fatalf("rename %d: %v", i, err)
		}
		sub.waitFor(t, "the rename event", func(f Frame) bool {
			return f.Type == "event" && strings.Contains(string(f.Data), title)
		})
		sys.cases.Unsubscribe(ctx, "usr_a", r.CaseID, sub)
		time.Sleep(time.Duration(i%3) * time.Millisecond)
	}
	if counterValue(m.passivations) < 5 {
		t.Fatalf("only %v passivations: the race was not exercised", counterValue(m.passivations))
	}
}
