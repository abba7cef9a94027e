package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxSessions bounds one session count: the harness never opens more
// connections than this per phase.
const maxSessions = 5000

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fmload:", err)
		}
		os.Exit(2)
	}
}

// run is the benchmark, or the floor relay with the "relay" subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "relay" {
		return runRelay(ctx, args[1:], stderr)
	}
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	rep, err := runBench(ctx, cfg, stderr)
	if rep != nil {
		printReport(stdout, rep)
		if cfg.Out != "" {
			if werr := writeReport(cfg.Out, rep); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	return err
}

// config is the benchmark's command line.
type config struct {
	Bin             string        `json:"bin"`
	Sessions        []int         `json:"sessions"`
	Targets         []string      `json:"targets"`
	Duration        time.Duration `json:"duration"`
	TTFT            time.Duration `json:"ttft"`
	TPS             float64       `json:"tokens_per_second"`
	ReplyTokens     int           `json:"reply_tokens"`
	ChunkChars      int           `json:"chunk_chars"`
	SessionsPerUser int           `json:"sessions_per_user"`
	Think           time.Duration `json:"think_max"`
	TurnTimeout     time.Duration `json:"turn_timeout"`
	Idle            time.Duration `json:"idle"`
	Deadline        time.Duration `json:"deadline"`
	QuietWait       time.Duration `json:"quiet_wait"`
	Seed            uint64        `json:"seed"`
	Out             string        `json:"out"`
	CPUProfile      string        `json:"-"`
	MetricsDir      string        `json:"-"`

	// inspectDurableLog, set by tests, gets floor-durable's log directory
	// after the relay has stopped and before the directory is removed.
	inspectDurableLog func(dir string)
}

// MarshalJSON writes the durations as Go duration strings.
func (c config) MarshalJSON() ([]byte, error) {
	type plain config
	return json.Marshal(struct {
		plain
		Duration    string `json:"duration"`
		TTFT        string `json:"ttft"`
		Think       string `json:"think_max"`
		TurnTimeout string `json:"turn_timeout"`
		Idle        string `json:"idle"`
		Deadline    string `json:"deadline"`
		QuietWait   string `json:"quiet_wait"`
	}{plain(c), c.Duration.String(), c.TTFT.String(), c.Think.String(), c.TurnTimeout.String(),
		c.Idle.String(), c.Deadline.String(), c.QuietWait.String()})
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fmload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fmload --bin ./bin/faultmaven [flags]   (or: fmload relay --llm URL)")
		fs.PrintDefaults()
	}
	sessions := fs.String("sessions", "100,250,500,1000", "comma-separated session counts (WebSocket connections) per phase")
	targets := fs.String("targets", "server,floor", "comma-separated targets to measure: server, floor (non-durable relay), "+
		"floor-durable (the relay with a group-committed log)")
	fs.StringVar(&c.Bin, "bin", "./bin/faultmaven", "the faultmaven binary to serve (make build)")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "active phase per session count and target")
	fs.DurationVar(&c.TTFT, "ttft", 300*time.Millisecond, "fake LLM: delay before the first chunk")
	fs.Float64Var(&c.TPS, "tps", 50, "fake LLM: chunks (tokens) per second per stream")
	fs.IntVar(&c.ReplyTokens, "reply-tokens", 40, "fake LLM: chunks per reply")
	fs.IntVar(&c.ChunkChars, "chunk-chars", 4, "fake LLM: characters per chunk")
	fs.IntVar(&c.SessionsPerUser, "sessions-per-user", 10, "sessions sharing one user account")
	fs.DurationVar(&c.Think, "think", 500*time.Millisecond, "upper bound of the random pause between a session's turns")
	fs.DurationVar(&c.TurnTimeout, "turn-timeout", 30*time.Second, "a turn not done within this fails and ends its session")
	fs.DurationVar(&c.Idle, "idle", 3*time.Second, "idle time with every connection open before RSS is read")
	fs.DurationVar(&c.Deadline, "deadline", 0, "hard limit of the whole run (0: computed from the phases)")
	fs.DurationVar(&c.QuietWait, "quiet-wait", 3*time.Minute, "before each phase, wait at most this long for the machine to be under 20% busy (0: do not wait)")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock; printed)")
	fs.StringVar(&c.Out, "out", "", "write the results as JSON to this file")
	fs.StringVar(&c.MetricsDir, "metrics-dir", "", "save each target's /metrics after its active phase in this directory")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write this process's CPU profile (generator and fake LLM) to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.Sessions, err = parseCounts(*sessions); err != nil {
		return c, err
	}
	if c.Targets, err = parseTargets(*targets); err != nil {
		return c, err
	}
	switch {
	case c.Duration < time.Second || c.Duration > 10*time.Minute:
		return c, errors.New("--duration must be between 1s and 10m")
	case c.TTFT < 0 || c.TTFT > time.Minute || c.TPS <= 0 || c.TPS > 10000:
		return c, errors.New("--ttft must be 0-1m and --tps 0-10000 (exclusive of 0)")
	case c.ReplyTokens < 1 || c.ReplyTokens > 10000 || c.ChunkChars < 1 || c.ChunkChars > 64:
		return c, errors.New("--reply-tokens must be 1-10000 and --chunk-chars 1-64")
	case c.SessionsPerUser < 1 || c.SessionsPerUser > 20:
		return c, errors.New("--sessions-per-user must be 1-20 (the server allows 20 connections per user)")
	case c.Think < 0 || c.TurnTimeout < time.Second || c.Idle < 0 || c.Deadline < 0 || c.QuietWait < 0:
		return c, errors.New("--think, --idle, --quiet-wait and --deadline must not be negative; --turn-timeout at least 1s")
	}
	if slices.Contains(c.Targets, targetServer) {
		if _, err := os.Stat(c.Bin); err != nil {
			return c, fmt.Errorf("--bin %s: %w (run make build)", c.Bin, err)
		}
	}
	if c.Deadline == 0 {
		// Per phase: the active time, the longest turn, setup and checks.
		per := c.Duration + c.TurnTimeout + c.Idle + c.QuietWait + 3*time.Minute
		c.Deadline = time.Duration(len(c.Sessions)*len(c.Targets)) * per
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	return c, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > maxSessions {
			return nil, fmt.Errorf("--sessions: %q is not a count from 1 to %d", part, maxSessions)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseTargets(s string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		switch t := strings.TrimSpace(part); t {
		case targetServer, targetFloor, targetFloorDurable:
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		default:
			return nil, fmt.Errorf("--targets: unknown target %q (server, floor, floor-durable)", t)
		}
	}
	return out, nil
}

// runBench runs every phase and returns the report (also after an error,
// with what was measured).
func runBench(ctx context.Context, cfg config, stderr io.Writer) (*report, error) {
	nofile, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raise the open-files limit: %w", err)
	}
	if need := uint64(4*slices.Max(cfg.Sessions) + 256); nofile < need {
		return nil, fmt.Errorf("open-files limit %d is below the %d this run needs", nofile, need)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	fake, err := newFakeLLM(pacing{TTFT: cfg.TTFT, TPS: cfg.TPS, ChunkChars: cfg.ChunkChars, Chunks: cfg.ReplyTokens})
	if err != nil {
		return nil, err
	}
	defer fake.Close()
	b := &bench{cfg: cfg, fake: fake, procs: &procs{}, self: self, stderr: stderr}
	defer b.procs.killAll()
	// The watchdog: should a phase hang past the deadline despite its
	// timeouts, kill the children and leave.
	watchdog := time.AfterFunc(cfg.Deadline+time.Minute, func() {
		b.procs.killAll()
		fmt.Fprintln(stderr, "fmload: hard deadline passed; children killed")
		os.Exit(3)
	})
	defer watchdog.Stop()

	rep := newReport(cfg)
	fmt.Fprintf(stderr, "fmload: seed %d, deadline %s, load average at start %s\n", cfg.Seed, cfg.Deadline, rep.Machine.LoadAvg)
	for i, n := range cfg.Sessions {
		for j, target := range cfg.Targets {
			if i+j > 0 {
				sleepCtx(ctx, 2*time.Second) // let sockets and the machine settle
			}
			res, err := b.runPhase(ctx, target, n)
			if res != nil {
				rep.Results = append(rep.Results, *res)
			}
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("%s N=%d: %v", target, n, err))
				if ctx.Err() != nil {
					rep.finish()
					return rep, fmt.Errorf("%s N=%d: %w", target, n, err)
				}
				fmt.Fprintf(stderr, "fmload: %s N=%d failed: %v\n", target, n, err)
			}
		}
	}
	rep.finish()
	if len(rep.Errors) > 0 {
		return rep, fmt.Errorf("%d phase(s) failed: %s", len(rep.Errors), rep.Errors[0])
	}
	return rep, nil
}
