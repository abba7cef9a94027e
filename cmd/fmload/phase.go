package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/faultmaven/faultmaven/internal/procstat"
	"github.com/gorilla/websocket"
)

// One phase: one target, one session count, from a fresh process to its
// shutdown.

// Target names.
const (
	targetServer       = "server"
	targetFloor        = "floor"
	targetFloorDurable = "floor-durable"
)

// result is what one phase measured.
type result struct {
	Target    string `json:"target"`
	Sessions  int    `json:"sessions"`
	Connected int    `json:"connected"`
	Users     int    `json:"users"`

	Ack   latency `json:"turn_to_ack"`
	LLM   latency `json:"turn_to_llm_request"`
	Delta latency `json:"chunk_to_delta"`
	// ServerAck is the server's own frame read → ack written
	// (faultmaven_ws_ack_seconds), so the client's ack can be split into
	// the server's part and the rest (scheduling in either process).
	ServerAck *histLatency `json:"server_frame_to_ack,omitempty"`

	ActiveSec   float64        `json:"active_seconds"`
	Turns       int            `json:"turns_completed"`
	TurnsPerSec float64        `json:"turns_per_second"`
	Failed      int            `json:"failed_turns"`
	FailReasons map[string]int `json:"failure_reasons,omitempty"`
	LostConns   int            `json:"connections_lost"`
	FirstError  string         `json:"first_error,omitempty"`
	Errors      []string       `json:"errors,omitempty"` // a few distinct ones

	RSSBefore         int64        `json:"rss_before_bytes"`
	RSSIdle           int64        `json:"rss_idle_bytes"`
	RSSPeak           int64        `json:"rss_peak_bytes"`
	RSSPerIdleConn    float64      `json:"rss_per_idle_conn_bytes"`
	RSSPerActiveConn  float64      `json:"rss_per_active_conn_bytes"`
	GoMemPerIdleConn  float64      `json:"heap_stack_per_idle_conn_bytes"`
	ReusablePerConn   float64      `json:"free_heap_before_per_conn_bytes"`
	StackPerIdleConn  float64      `json:"stacks_per_idle_conn_bytes"`
	NetRSSPerIdleConn float64      `json:"rss_net_of_free_heap_per_idle_conn_bytes"`
	GeneratorCPU      float64      `json:"generator_cpu_pct"`
	OtherCPU          float64      `json:"other_processes_cpu_pct"`
	BusyBefore        float64      `json:"machine_busy_before_pct"`
	TargetCPU         float64      `json:"target_cpu_pct"`
	DiskSyncMs        float64      `json:"disk_sync_before_ms"` // sync(2) of earlier phases' writes before this one
	LLMRequestBytes   float64      `json:"llm_request_bytes_avg"`
	UntaggedLLM       int64        `json:"llm_requests_without_turn"`
	RepeatedLLM       int64        `json:"llm_requests_repeated"`
	TargetWarnings    int          `json:"target_log_warnings"`
	TargetLogTail     string       `json:"target_log_tail,omitempty"`
	Persistence       *persistence `json:"persistence,omitempty"`
	PersistenceFailed int          `json:"persistence_violations"`
}

// bench is the run as a whole: configuration, the fake LLM, the children.
type bench struct {
	cfg    config
	fake   *fakeLLM
	procs  *procs
	self   string // this executable, for the relay
	stderr io.Writer
	phases int
}

// startTarget starts the server or the relay, durable or not.
func (b *bench) startTarget(ctx context.Context, target string) (*proc, func(), error) {
	var p *proc
	var err error
	var cleanup func()
	switch target {
	case targetServer:
		dir, derr := os.MkdirTemp("", "fmload-data-")
		if derr != nil {
			return nil, nil, derr
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		args := []string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "warn",
			"--rate-limit-ip", "100000000", "--rate-limit-user", "100000000", "--rate-limit-auth", "100000000"}
		// The profiling listener takes the harness's free-memory calls: the
		// one FM_PPROF_ADDR names (for profiling by hand), else a free port.
		pp := os.Getenv("FM_PPROF_ADDR")
		if pp == "" {
			var perr error
			if pp, perr = freeLoopbackAddr(); perr != nil {
				cleanup()
				return nil, nil, perr
			}
		}
		env := append(os.Environ(), "FM_LLM_BASE_URL="+b.fake.URL(), "FM_LLM_MODEL=fake", "FM_PPROF_ADDR="+pp)
		p, err = startProc(ctx, target, b.cfg.Bin, args, env, pp)
	case targetFloor:
		cleanup = func() {}
		p, err = startProc(ctx, target, b.self, b.relayArgs(), os.Environ(), "")
	case targetFloorDurable:
		// Made where the server's data directory is, so that both sync to
		// the same disk.
		dir, derr := os.MkdirTemp("", "fmload-relay-")
		if derr != nil {
			return nil, nil, derr
		}
		cleanup = func() {
			if b.cfg.inspectDurableLog != nil {
				b.cfg.inspectDurableLog(dir)
			}
			_ = os.RemoveAll(dir)
		}
		p, err = startProc(ctx, target, b.self, append(b.relayArgs(), "--durable", dir), os.Environ(), "")
	default:
		err = fmt.Errorf("unknown target %q", target)
	}
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, nil, err
	}
	b.procs.add(p)
	return p, func() {
		p.stop(10 * time.Second)
		b.procs.remove(p)
		cleanup()
	}, nil
}

// relayArgs is the command line of the relay, without --durable.
func (b *bench) relayArgs() []string {
	return []string{"relay", "--addr", "127.0.0.1:0", "--llm", b.fake.URL()}
}

// runPhase measures n sessions against target.
func (b *bench) runPhase(ctx context.Context, target string, n int) (*result, error) {
	b.phases++
	b.fake.reset()
	logf := func(format string, args ...any) {
		_, _ = fmt.Fprintf(b.stderr, "fmload: %s N=%d: %s\n", target, n, fmt.Sprintf(format, args...))
	}
	// What earlier phases wrote and deleted reaches the disk now, not
	// during this phase: on ext4 mounted with discard, deleting a data
	// directory queues discards that the next journal commit (the next
	// fsync of a target's log) would wait for, stalling it by up to
	// seconds.
	synced := time.Now()
	syscall.Sync()
	diskSync := time.Since(synced)
	busy := waitQuiet(ctx, b.cfg.QuietWait, logf)
	p, stop, err := b.startTarget(ctx, target)
	if err != nil {
		return nil, err
	}
	defer stop()
	res := &result{Target: target, Sessions: n, BusyBefore: busy, DiskSyncMs: float64(diskSync.Microseconds()) / 1000}
	a := newAPI(p.addr)
	defer a.close()

	sessions, err := b.setup(ctx, a, n, res)
	if err != nil {
		return nil, fmt.Errorf("%s setup: %w (log: %s)", target, err, p.lastLines())
	}
	logf("%d users, %d cases ready", res.Users, n)
	waitScavenged(ctx, a)
	if err := p.freeMemory(ctx); err != nil {
		logf("free memory before reading RSS: %v", err)
	}
	res.RSSBefore = settledRSS(ctx, p.pid())
	memBefore, memErr := a.goMemory(ctx)

	b.connectAll(ctx, p.addr, sessions, res)
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	// From here on every connection exists: end them all at once should
	// ctx end (deadline, SIGINT), so that no read waits for its timeout.
	stopConns := context.AfterFunc(ctx, func() {
		for _, s := range sessions {
			if s.conn != nil {
				_ = s.conn.Close()
			}
		}
	})
	defer stopConns()
	logf("%d/%d connected", res.Connected, n)
	if res.Connected == 0 {
		return nil, fmt.Errorf("%s: no session connected: %s", target, res.FirstError)
	}
	sleepCtx(ctx, b.cfg.Idle)
	if err := p.freeMemory(ctx); err != nil {
		logf("free memory before reading RSS: %v", err)
	}
	res.RSSIdle = settledRSS(ctx, p.pid())
	res.RSSPerIdleConn = float64(res.RSSIdle-res.RSSBefore) / float64(res.Connected)
	if memIdle, err := a.goMemory(ctx); err == nil && memErr == nil {
		conns := float64(res.Connected)
		res.GoMemPerIdleConn = float64(memIdle.used()-memBefore.used()) / conns
		res.StackPerIdleConn = float64(memIdle.StackInuse-memBefore.StackInuse) / conns
		res.ReusablePerConn = float64(memBefore.reusable()) / conns
		// Free heap the runtime kept is resident but not in use: new
		// connections take it without the RSS growing, and the scavenger
		// may return it meanwhile. Without it the delta is what was taken.
		res.NetRSSPerIdleConn = float64((res.RSSIdle-memIdle.reusable())-(res.RSSBefore-memBefore.reusable())) / conns
	}

	b.active(ctx, p, sessions, res)
	logf("%d turns, %d failed, %.1f turns/s", res.Turns, res.Failed, res.TurnsPerSec)
	if b.cfg.MetricsDir != "" || target == targetServer {
		text, err := a.metricsText(ctx)
		if err != nil {
			logf("read /metrics: %v", err)
		}
		if err == nil && b.cfg.MetricsDir != "" {
			path := filepath.Join(b.cfg.MetricsDir, fmt.Sprintf("metrics-%s-%d.txt", target, n))
			if err := os.WriteFile(path, text, 0o644); err != nil {
				logf("save /metrics: %v", err)
			}
		}
		if err == nil && target == targetServer {
			if h, err := parseHistogram(bytes.NewReader(text), "faultmaven_ws_ack_seconds"); err != nil {
				logf("server ack histogram: %v", err)
			} else {
				at := func(q float64) float64 { return ms(time.Duration(h.quantile(q) * float64(time.Second))) }
				res.ServerAck = &histLatency{N: int(h.total()), P50: at(0.5), P99: at(0.99)}
			}
		}
	}
	for _, s := range sessions {
		s.close()
	}
	if target == targetServer && ctx.Err() == nil {
		res.Persistence = b.verify(ctx, a, sessions)
		res.PersistenceFailed = res.Persistence.Violations()
	}
	res.UntaggedLLM, res.RepeatedLLM = b.fake.untagged.Swap(0), b.fake.repeats.Swap(0)
	if n := b.fake.requests.Swap(0); n > 0 {
		res.LLMRequestBytes = float64(b.fake.bodyBytes.Swap(0)) / float64(n)
	}
	res.TargetWarnings = p.warningCount()
	if res.TargetWarnings > 0 || !p.alive() {
		res.TargetLogTail = p.lastLines()
	}
	if !p.alive() {
		return res, fmt.Errorf("%s exited during the run: %s", target, p.lastLines())
	}
	return res, ctx.Err()
}

// setup registers the users and creates one case per session.
func (b *bench) setup(ctx context.Context, a *api, n int, res *result) ([]*session, error) {
	per := b.cfg.SessionsPerUser
	res.Users = (n + per - 1) / per
	tokens := make([]string, res.Users)
	// One registration at a time: each hashes a password with Argon2id
	// (19 MiB), and freed hash memory would later hide connection memory
	// from the RSS delta.
	err := parallel(ctx, res.Users, 1, func(ctx context.Context, i int) error {
		var err error
		tokens[i], err = a.register(ctx, fmt.Sprintf("fmload-p%d-u%d", b.phases, i), "fmload-password-"+fmt.Sprint(i))
		return err
	})
	if err != nil {
		return nil, err
	}
	sessions := make([]*session, n)
	err = parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		s := &session{idx: i, user: i / per, token: tokens[i/per],
			rng: rand.New(rand.NewPCG(b.cfg.Seed, uint64(b.phases)<<32|uint64(i)))}
		var err error
		s.caseID, err = a.createCase(ctx, s.token, fmt.Sprintf("fmload session %d", i))
		sessions[i] = s
		return err
	})
	return sessions, err
}

// connectAll opens every session's connection, a few at a time.
func (b *bench) connectAll(ctx context.Context, addr string, sessions []*session, res *result) {
	d := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024}
	url := "ws://" + addr + "/api/v1/ws"
	var mu sync.Mutex
	_ = parallel(ctx, len(sessions), 32, func(ctx context.Context, i int) error {
		s := sessions[i]
		err := s.connect(ctx, d, url)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			s.lost, s.lastErr = true, err.Error()
			if res.FirstError == "" {
				res.FirstError = "connect: " + err.Error()
			}
			return nil
		}
		res.Connected++
		return nil
	})
}

// active runs every connected session for the configured duration and
// gathers the measurements.
func (b *bench) active(ctx context.Context, p *proc, sessions []*session, res *result) {
	start := time.Now()
	w := &workload{
		phase: b.phases, fake: b.fake, pace: b.fake.pace, turnTimeout: b.cfg.TurnTimeout,
		think: b.cfg.Think, stagger: time.Second, stopAt: start.Add(b.cfg.Duration),
	}
	cpu0, _ := cpuTime(p.pid())
	gen0 := procstat.SelfCPU()
	busy0, _, _ := procstat.MachineCPU()
	samplerCtx, stopSampler := context.WithCancel(ctx)
	peak := make(chan int64, 1)
	go func() { peak <- sampleRSS(samplerCtx, p.pid(), 200*time.Millisecond) }()

	var wg sync.WaitGroup
	for _, s := range sessions {
		if s.conn == nil || s.lost {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, w)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	cpu1, _ := cpuTime(p.pid())
	gen1 := procstat.SelfCPU()
	busy1, _, _ := procstat.MachineCPU()
	stopSampler()
	res.RSSPeak = max(<-peak, res.RSSIdle)
	res.RSSPerActiveConn = float64(res.RSSPeak-res.RSSBefore) / float64(max(res.Connected, 1))
	res.ActiveSec = wall.Seconds()
	res.TargetCPU = 100 * float64(cpu1-cpu0) / float64(wall)
	res.GeneratorCPU = 100 * float64(gen1-gen0) / float64(wall)
	// Whatever else ran meanwhile (colleagues' builds, say) competed for
	// the same cores: the latencies are only comparable when this is low.
	res.OtherCPU = max(100*float64((busy1-busy0)-(cpu1-cpu0)-(gen1-gen0))/float64(wall), 0)

	var ack, llm, delta []time.Duration
	inWindow := 0
	for _, s := range sessions {
		ack, llm, delta = append(ack, s.ack...), append(llm, s.llm...), append(delta, s.delta...)
		res.Turns += s.completed
		inWindow += s.inWindow
		for reason, k := range s.failed {
			if res.FailReasons == nil {
				res.FailReasons = map[string]int{}
			}
			res.FailReasons[reason] += k
			res.Failed += k
		}
		if s.lost && s.conn != nil {
			res.LostConns++
		}
		if s.lastErr != "" && res.FirstError == "" {
			res.FirstError = s.lastErr
		}
		if s.lastErr != "" && len(res.Errors) < 5 && !slices.Contains(res.Errors, s.lastErr) {
			res.Errors = append(res.Errors, s.lastErr)
		}
	}
	res.TurnsPerSec = float64(inWindow) / b.cfg.Duration.Seconds()
	res.Ack, res.LLM, res.Delta = summarize(ack), summarize(llm), summarize(delta)
}

// verify checks exactly-once persistence of every session's turns.
func (b *bench) verify(ctx context.Context, a *api, sessions []*session) *persistence {
	var mu sync.Mutex
	total := &persistence{}
	_ = parallel(ctx, len(sessions), 8, func(ctx context.Context, i int) error {
		s := sessions[i]
		if s.caseID == "" {
			return nil
		}
		msgs, err := a.messages(ctx, s.token, s.caseID)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			total.FetchErrors++
			return nil
		}
		total.add(checkExactlyOnce(s.sent, msgs))
		return nil
	})
	return total
}

// parallel runs f for 0..n-1 on up to workers goroutines and returns the
// first error; after an error or ctx's end no new index starts.
func parallel(parent context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return parent.Err()
}

// quietBusy is the machine load (percent of all cores, from everything
// running) below which a phase may start.
const quietBusy = 20

// waitQuiet waits, at most maxWait, until the machine's cores are less
// than quietBusy percent busy over a two-second window, and returns the
// last reading. Phases start on a quiet machine or say that they did not.
func waitQuiet(ctx context.Context, maxWait time.Duration, logf func(string, ...any)) float64 {
	if maxWait <= 0 {
		return 0
	}
	deadline := time.Now().Add(maxWait)
	for {
		b0, t0, err0 := procstat.MachineCPU()
		if !sleepCtx(ctx, 2*time.Second) {
			return 0
		}
		b1, t1, err1 := procstat.MachineCPU()
		if err0 != nil || err1 != nil || t1 <= t0 {
			return 0
		}
		busy := 100 * float64(b1-b0) / float64(t1-t0)
		if busy < quietBusy || time.Now().After(deadline) {
			return busy
		}
		logf("machine %.0f%% busy; waiting for it to calm down (at most until %s)", busy, deadline.Format(time.TimeOnly))
		if !sleepCtx(ctx, 8*time.Second) {
			return busy
		}
	}
}

// waitScavenged gives the target's Go runtime time (at most 20 s) to
// return the free heap the setup left behind (Argon2id hashes above all),
// until less than 4 MiB is left or it stops shrinking.
func waitScavenged(ctx context.Context, a *api) {
	prev, err := a.goMemory(ctx)
	for range 20 {
		if err != nil || prev.reusable() < 4<<20 || !sleepCtx(ctx, time.Second) {
			return
		}
		var cur goMem
		if cur, err = a.goMemory(ctx); err == nil && cur.reusable() > prev.reusable()-(256<<10) {
			return // no longer shrinking
		}
		prev = cur
	}
}

// settledRSS waits (at most 5 s) until the RSS of pid stops moving by
// more than 1% between samples half a second apart, and returns it.
func settledRSS(ctx context.Context, pid int) int64 {
	prev, _ := procstat.StatusBytes(pid, "VmRSS")
	for range 10 {
		if !sleepCtx(ctx, 500*time.Millisecond) {
			break
		}
		cur, err := procstat.StatusBytes(pid, "VmRSS")
		if err != nil {
			break
		}
		diff := cur - prev
		prev = cur
		if diff < 0 {
			diff = -diff
		}
		if diff*100 <= cur {
			break
		}
	}
	return prev
}

// sampleRSS returns the highest RSS of pid seen every period until ctx
// ends.
func sampleRSS(ctx context.Context, pid int, period time.Duration) int64 {
	var peak int64
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if v, err := procstat.StatusBytes(pid, "VmRSS"); err == nil {
			peak = max(peak, v)
		}
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
		}
	}
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
