package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// allConfig is the all command's flags.
type allConfig struct {
	model        string
	corpus       string
	out          string
	ortLib       string
	runs         int
	n            int
	passes       int
	singles      int
	threads      []int
	hugot        bool
	hugotN       int
	hugotSingles int
	copies       int
	node         string
	nodeScript   string
	ortNode      string
	stepTimeout  time.Duration
	quietWait    time.Duration
	quietCores   float64
}

func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("all", stderr)
	var c allConfig
	fs.StringVar(&c.model, "model", ".cache/testmodel/minilm", "model directory (model.onnx and tokenizer.json)")
	fs.StringVar(&c.corpus, "corpus", "testdata/kb/runbooks", "directory of markdown runbooks")
	fs.StringVar(&c.out, "out", ".cache/bench-embed", "directory for the texts, vectors and results")
	fs.StringVar(&c.ortLib, "ort-lib", "", "libonnxruntime.so (default: $FM_ORT_LIB, then the usual places)")
	fs.IntVar(&c.runs, "runs", 1, "times to run every step; the report gives medians")
	fs.IntVar(&c.n, "n", 256, "benchmark texts")
	fs.IntVar(&c.passes, "passes", 5, "timed throughput passes per ort and Node step; the median is reported")
	fs.IntVar(&c.singles, "singles", 200, "single-text calls per ort and Node step")
	threads := fs.String("threads", "1,2", "ONNX Runtime intra-op thread counts, for Go and Node alike")
	fs.BoolVar(&c.hugot, "hugot", true, "also measure the hugot backend")
	fs.IntVar(&c.hugotN, "hugot-n", 32, "texts per hugot throughput pass (it is slow)")
	fs.IntVar(&c.hugotSingles, "hugot-singles", 20, "single-text calls for hugot")
	fs.IntVar(&c.copies, "copies", 20, "corpus copies for the larger ingestion run (1: only the corpus once)")
	fs.StringVar(&c.node, "node", "node", `Node executable; "" skips the Node steps`)
	fs.StringVar(&c.nodeScript, "node-script", "embed/model/bench/node_embed.js", "the Node benchmark script")
	fs.StringVar(&c.ortNode, "ort-node", ".cache/ort/node_modules/onnxruntime-node", "the unpacked onnxruntime-node package")
	fs.DurationVar(&c.stepTimeout, "step-timeout", 8*time.Minute, "kill a step that runs longer")
	fs.DurationVar(&c.quietWait, "quiet-wait", time.Minute, "before each step, wait up to this long for a quiet machine")
	fs.Float64Var(&c.quietCores, "quiet-cores", 0.3, "a quiet machine has other processes using fewer cores than this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(*threads, ",") {
		t, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || t < 1 {
			return fmt.Errorf("-threads %q: want a list of counts ≥ 1", *threads)
		}
		c.threads = append(c.threads, t)
	}
	if c.runs < 1 || c.copies < 1 || len(c.threads) == 0 {
		return fmt.Errorf("want -runs, -copies ≥ 1 and at least one thread count")
	}
	if c.threads[0] != 1 {
		return fmt.Errorf("-threads must start with 1: go-ort-t1 is the reference the other vectors are compared with")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	// step runs one step as a subprocess after waiting (bounded) for a
	// quiet machine, and adds to its result what the rest of the machine
	// used meanwhile: the cores are shared.
	step := func(name, out string, argv ...string) error {
		waited := waitQuiet(ctx, c.quietWait, c.quietCores)
		sctx, cancel := context.WithTimeout(ctx, c.stepTimeout)
		defer cancel()
		cmd := exec.CommandContext(sctx, argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.WaitDelay = 5 * time.Second
		s0, _, err0 := procstat.MachineCPU()
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			if sctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%s: killed after %s", name, c.stepTimeout)
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		wall := time.Since(t0)
		s1, _, err1 := procstat.MachineCPU()
		if out == "" {
			return nil
		}
		r, err := readResult(out)
		if err != nil {
			return err
		}
		own := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() / wall.Seconds()
		if err0 == nil && err1 == nil {
			r.OthersCores = max(0, busyCores(s0, s1, wall)-own)
		}
		r.QuietWaitSeconds = waited.Seconds()
		return writeResult(out, r)
	}
	libArgs := func() []string {
		if c.ortLib != "" {
			return []string{"-ort-lib", c.ortLib}
		}
		return nil
	}

	texts := filepath.Join(c.out, "texts.json")
	if err := step("texts", "", exe, "texts", "-model", c.model, "-corpus", c.corpus, "-n", strconv.Itoa(c.n), "-out", texts); err != nil {
		return err
	}
	var dirs []string
	for i := 1; i <= c.runs; i++ {
		dir := filepath.Join(c.out, fmt.Sprintf("run-%d", i))
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "— run %d of %d (%s)\n", i, c.runs, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
		ref := filepath.Join(dir, "go-ort-t1.f32")
		for _, t := range c.threads {
			name := fmt.Sprintf("go-ort-t%d", t)
			argv := []string{exe, "embed", "-backend", "ort", "-model", c.model, "-texts", texts,
				"-threads", strconv.Itoa(t), "-passes", strconv.Itoa(c.passes), "-singles", strconv.Itoa(c.singles),
				"-name", name, "-json", filepath.Join(dir, name+".json")}
			if t == 1 {
				argv = append(argv, "-vectors-out", ref)
			} else {
				argv = append(argv, "-vectors-ref", ref)
			}
			if err := step(name, filepath.Join(dir, name+".json"), append(argv, libArgs()...)...); err != nil {
				return err
			}
			if c.node == "" {
				continue
			}
			name = fmt.Sprintf("node-ort-t%d", t)
			if err := step(name, filepath.Join(dir, name+".json"), c.node, c.nodeScript, "--ort-node", c.ortNode,
				"--model", filepath.Join(c.model, "model.onnx"), "--texts", texts, "--threads", strconv.Itoa(t),
				"--passes", strconv.Itoa(c.passes), "--singles", strconv.Itoa(c.singles),
				"--vectors-ref", ref, "--name", name, "--json", filepath.Join(dir, name+".json")); err != nil {
				return err
			}
		}
		if c.hugot {
			if err := step("go-hugot", filepath.Join(dir, "go-hugot.json"), exe, "embed", "-backend", "hugot", "-model", c.model, "-texts", texts,
				"-n", strconv.Itoa(c.hugotN), "-passes", "1", "-warm-pass=false", "-singles", strconv.Itoa(c.hugotSingles),
				"-vectors-ref", ref, "-name", "go-hugot", "-json", filepath.Join(dir, "go-hugot.json")); err != nil {
				return err
			}
		}
		// The corpus once and -copies times, lexical only and with ort
		// vectors (the server's defaults: one ingestion worker per
		// embedder); then the large one again with a single ingestion
		// worker, the setting before that default, for comparison.
		type ingestRun struct {
			embed             string
			copies, kbWorkers int
		}
		ingests := []ingestRun{{"none", 1, 0}, {"ort", 1, 0}}
		if c.copies > 1 {
			ingests = append(ingests, ingestRun{"none", c.copies, 0}, ingestRun{"ort", c.copies, 0})
		}
		ingests = append(ingests, ingestRun{"ort", c.copies, 1})
		for _, ir := range ingests {
			name := fmt.Sprintf("ingest-%s-x%d", ir.embed, ir.copies)
			if ir.kbWorkers > 0 {
				name += fmt.Sprintf("-kbw%d", ir.kbWorkers)
			}
			out := filepath.Join(dir, name+".json")
			argv := []string{exe, "ingest", "-embed", ir.embed, "-model", c.model, "-corpus", c.corpus,
				"-copies", strconv.Itoa(ir.copies), "-kb-workers", strconv.Itoa(ir.kbWorkers), "-name", name, "-json", out}
			if err := step(name, out, append(argv, libArgs()...)...); err != nil {
				return err
			}
		}
		dirs = append(dirs, dir)
	}
	runs, err := loadRuns(dirs)
	if err != nil {
		return err
	}
	set, err := readTexts(texts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := printReport(&buf, runs, set); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.out, "report.md"), buf.Bytes(), 0o644)
}

// waitQuiet waits, at most maxWait, until the machine's busy CPU over two
// seconds is below limit cores, and returns how long it waited.
func waitQuiet(ctx context.Context, maxWait time.Duration, limit float64) time.Duration {
	start := time.Now()
	for time.Since(start) < maxWait && ctx.Err() == nil {
		a, _, err := procstat.MachineCPU()
		if err != nil {
			break
		}
		t0 := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		b, _, _ := procstat.MachineCPU()
		if busyCores(a, b, time.Since(t0)) < limit {
			break
		}
	}
	return time.Since(start)
}
