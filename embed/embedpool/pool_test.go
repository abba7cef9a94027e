package embedpool

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scripted is a model whose vector for a text is a hash of it, so every
// caller can check it got its own vectors in its own order. It records the
// batches it saw and can be held (gate) or made to fail or panic.
type scripted struct {
	mu      sync.Mutex
	batches [][]string
	gate    chan struct{} // when non-nil, each Embed waits for a receive
	started chan struct{} // when non-nil, signalled as each Embed starts
}

func vectorOf(s string) []float32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	x := h.Sum32()
	return []float32{float32(x & 0xffff), float32(x >> 16), float32(len(s))}
}

func (m *scripted) Dim() int { return 3 }

func (m *scripted) Embed(_ context.Context, texts []string) ([][]float32, error) {
	m.mu.Lock()
	m.batches = append(m.batches, append([]string(nil), texts...))
	m.mu.Unlock()
	if m.started != nil {
		m.started <- struct{}{}
	}
	if m.gate != nil {
		<-m.gate
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		switch {
		case strings.HasPrefix(t, "panic"):
			panic("scripted panic on " + t)
		case strings.HasPrefix(t, "fail"):
			return nil, fmt.Errorf("scripted failure on %q", t)
		}
		out[i] = vectorOf(t)
	}
	return out, nil
}

func (m *scripted) seen() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]string(nil), m.batches...)
}

func newEngine(t *testing.T) *actor.Engine {
	t.Helper()
	e, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func startPool(t *testing.T, m Model, cfg Config) *Pool {
	t.Helper()
	p, err := Start(newEngine(t), m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func checkVectors(t *testing.T, texts []string, got [][]float32) {
	t.Helper()
	if len(got) != len(texts) {
		t.Fatalf("got %d vectors for %d texts", len(got), len(texts))
	}
	for i, text := range texts {
		want := vectorOf(text)
		for j := range want {
			if got[i][j] != want[j] {
				t.Fatalf("vector %d (%q) = %v, want %v", i, text, got[i], want)
			}
		}
	}
}

func TestConcurrentRequestsGetTheirOwnVectorsInOrder(t *testing.T) {
	m := &scripted{}
	p := startPool(t, m, Config{Workers: 2, MaxBatch: 8})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for r := 0; r < 40; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			texts := make([]string, 1+r%13) // 1..13 texts: some span batches
			for i := range texts {
				texts[i] = fmt.Sprintf("request %d text %d", r, i)
			}
			got, err := p.Embed(context.Background(), texts)
			if err != nil {
				errs <- err
				return
			}
			for i, text := range texts {
				if want := vectorOf(text); got[i][0] != want[0] || got[i][1] != want[1] {
					errs <- fmt.Errorf("request %d: vector %d is not its text's", r, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, b := range m.seen() {
		if len(b) > 8 {
			t.Fatalf("batch of %d texts exceeds MaxBatch 8", len(b))
		}
	}
}

func TestSmallConcurrentRequestsShareABatch(t *testing.T) {
	m := &scripted{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	p := startPool(t, m, Config{Workers: 1, MaxBatch: 32})
	results := make(chan error, 11)
	// The first request occupies the only embedder...
	go func() { _, err := p.Embed(context.Background(), []string{"first"}); results <- err }()
	<-m.started
	// ...while ten one-text requests queue up behind it.
	for i := 0; i < 10; i++ {
		go func() {
			texts := []string{fmt.Sprintf("small %d", i)}
			got, err := p.Embed(context.Background(), texts)
			if err == nil && got[0][0] != vectorOf(texts[0])[0] {
				err = errors.New("wrong vector")
			}
			results <- err
		}()
	}
	waitFor(t, func() bool { s, _ := p.Stats(context.Background()); return s.Queued == 10 })
	close(m.gate) // release everything
	for i := 0; i < 11; i++ {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	b := m.seen()
	if len(b) != 2 || len(b[1]) != 10 {
		t.Fatalf("batches %v: want the ten queued one-text requests in one batch", b)
	}
}

func TestFullQueueRefusesAtOnceAndLosesNothingAdmitted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := &scripted{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	p := startPool(t, m, Config{Workers: 1, MaxBatch: 4, MaxQueued: 6, Metrics: reg})
	admitted := make(chan error, 3)
	go func() { _, err := p.Embed(context.Background(), []string{"a", "b", "c", "d"}); admitted <- err }()
	<-m.started // first batch taken: the queue is empty again
	go func() { _, err := p.Embed(context.Background(), []string{"e", "f", "g"}); admitted <- err }()
	go func() { _, err := p.Embed(context.Background(), []string{"h", "i", "j"}); admitted <- err }()
	waitFor(t, func() bool { s, _ := p.Stats(context.Background()); return s.Queued == 6 })

	start := time.Now()
	_, err := p.Embed(context.Background(), []string{"one too many"})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("with a full queue: err = %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("refusal took %v: it must not wait for room", waited)
	}
	if got := testutil.ToFloat64(p.m.busy); got != 1 {
		t.Fatalf("busy_rejections_total = %v, want 1", got)
	}
	close(m.gate)
	for i := 0; i < 3; i++ {
		if err := <-admitted; err != nil {
			t.Fatalf("an admitted request failed: %v", err)
		}
	}
	got, err := p.Embed(context.Background(), []string{"after"})
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, []string{"after"}, got)
	if n := testutil.ToFloat64(p.m.embedded); n != 11 {
		t.Fatalf("texts_total = %v, want 11", n)
	}
}

func TestModelFailureAndPanicFailOnlyTheirBatch(t *testing.T) {
	m := &scripted{}
	p := startPool(t, m, Config{Workers: 1, MaxBatch: 2})
	if _, err := p.Embed(context.Background(), []string{"fail here"}); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "scripted failure") {
		t.Fatalf("failing text: err = %v, want ErrFailed with the model's reason", err)
	}
	if _, err := p.Embed(context.Background(), []string{"panic here"}); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking text: err = %v, want ErrFailed naming the panic", err)
	}
	texts := []string{"still", "works", "after", "both"}
	got, err := p.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, texts, got)
}

func TestCallerThatGaveUpIsDroppedFromTheQueue(t *testing.T) {
	m := &scripted{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	p := startPool(t, m, Config{Workers: 1, MaxBatch: 4})
	first := make(chan error, 1)
	go func() { _, err := p.Embed(context.Background(), []string{"first"}); first <- err }()
	<-m.started
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := p.Embed(ctx, []string{"abandoned 1", "abandoned 2"}); gaveUp <- err }()
	waitFor(t, func() bool { s, _ := p.Stats(context.Background()); return s.Queued == 2 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v", err)
	}
	close(m.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Embed(context.Background(), []string{"last"}); err != nil {
		t.Fatal(err)
	}
	for _, b := range m.seen() {
		for _, text := range b {
			if strings.HasPrefix(text, "abandoned") {
				t.Fatalf("the model ran %q for a caller that had gone", text)
			}
		}
	}
}

func TestStopFailsQueuedAndLaterRequests(t *testing.T) {
	m := &scripted{gate: make(chan struct{}), started: make(chan struct{}, 16)}
	p, err := Start(newEngine(t), m, Config{Workers: 1, MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 2)
	go func() { _, err := p.Embed(context.Background(), []string{"running"}); res <- err }()
	<-m.started
	go func() { _, err := p.Embed(context.Background(), []string{"queued"}); res <- err }()
	waitFor(t, func() bool { s, _ := p.Stats(context.Background()); return s.Queued == 1 })
	go func() { time.Sleep(50 * time.Millisecond); close(m.gate) }()
	p.Stop()
	for i := 0; i < 2; i++ {
		select {
		case err := <-res:
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Fatalf("after Stop: err = %v, want nil (finished) or ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request was left hanging by Stop")
		}
	}
	if _, err := p.Embed(context.Background(), []string{"late"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Embed after Stop: err = %v, want ErrClosed", err)
	}
}

func TestTooManyTextsIsInvalid(t *testing.T) {
	p := startPool(t, &scripted{}, Config{Workers: 1, MaxQueued: 8, MaxTexts: 5})
	if _, err := p.Embed(context.Background(), make([]string, 6)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if got, err := p.Embed(context.Background(), nil); err != nil || got != nil {
		t.Fatalf("no texts: got %v, %v; want nothing, no error", got, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
