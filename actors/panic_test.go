package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestPanicRestartsWithStateIntact(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{TestHooks: true, MaxRestarts: 3})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, "before panic"); err != nil {
		t.Fatal(err)
	}
	err := sys.cases.InjectPanic(ctx, "usr_a", r.CaseID)
	if !errors.Is(err, ErrCaseFailed) {
		t.Fatalf("the caller must see the failure, got %v", err)
	}
	v, err := sys.cases.View(ctx, "usr_a", r.CaseID)
	if err != nil || v.Row.Title != "before panic" || v.Seq != 2 {
		t.Fatalf("after restart: %+v %v", v, err)
	}
	if _, err := sys.cases.Rename(ctx, "usr_a", r.CaseID, "after panic"); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(sys.cases.d.metrics.restarts); got != 1 {
		t.Fatalf("restarts = %v", got)
	}
}

func TestRepeatedPanicsDegradeTheCaseNotTheProcess(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{TestHooks: true, MaxRestarts: 2})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	other, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	// hollywood's default limit is 3 restarts and exceeding it crashes the
	// process; go well past both limits.
	for i := 0; i < 3; i++ {
		if err := sys.cases.InjectPanic(ctx, "usr_a", r.CaseID); !errors.Is(err, ErrCaseFailed) {
			t.Fatalf("panic %d: %v", i, err)
		}
	}
	checkFor(t, 5*time.Second, func() error {
		_, err := sys.cases.View(ctx, "usr_a", r.CaseID)
		if !errors.Is(err, ErrDegraded) {
			return fmt.Errorf("want ErrDegraded, got %v", err)
		}
		return nil
	})
	for i := 0; i < 5; i++ {
		if err := sys.cases.InjectPanic(ctx, "usr_a", r.CaseID); !errors.Is(err, ErrDegraded) {
			t.Fatalf("a degraded case must refuse work, got %v", err)
		}
	}
	row, err := sys.cases.Get(ctx, "usr_a", r.CaseID)
	if err != nil || !row.Degraded {
		t.Fatalf("row must report degraded: %+v %v", row, err)
	}
	// The rest of the system is unaffected.
	if _, err := sys.cases.Rename(ctx, "usr_a", other.CaseID, "still fine"); err != nil {
		t.Fatal(err)
	}
}

func TestPanicHookDisabledByDefault(t *testing.T) {
	sys := startCases(t, t.TempDir(), Config{})
	ctx := context.Background()
	r, _ := sys.cases.Create(ctx, CreateCase{Owner: "usr_a"})
	if err := sys.cases.InjectPanic(ctx, "usr_a", r.CaseID); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("got %v", err)
	}
}
