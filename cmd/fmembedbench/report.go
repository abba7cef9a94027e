package main

import (
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strings"
)

func runReport(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("report", stderr)
	texts := fl.String("texts", "", "texts file, to describe the texts")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return fmt.Errorf("name the result files or directories")
	}
	runs, err := loadRuns(fl.Args())
	if err != nil {
		return err
	}
	var set *textSet
	if *texts != "" {
		if set, err = readTexts(*texts); err != nil {
			return err
		}
	}
	return printReport(stdout, runs, set)
}

// runResults is the results of one run: every step's result by name. Ratios are
// taken within a run, then summarised over runs.
type runResults map[string]*result

// loadRuns reads result files; the files of one directory are one run.
// Directories are walked for *.json files other than texts.json.
func loadRuns(paths []string) ([]runResults, error) {
	byDir := map[string]runResults{}
	var dirs []string
	add := func(path string) error {
		r, err := readResult(path)
		if err != nil {
			return err
		}
		d := filepath.Dir(path)
		if byDir[d] == nil {
			byDir[d] = runResults{}
			dirs = append(dirs, d)
		}
		if byDir[d][r.Name] != nil {
			return fmt.Errorf("%s: a second %q result in %s", path, r.Name, d)
		}
		byDir[d][r.Name] = r
		return nil
	}
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || (path != p && (filepath.Ext(path) != ".json" || filepath.Base(path) == "texts.json")) {
				return nil
			}
			return add(path)
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(dirs)
	out := make([]runResults, len(dirs))
	for i, d := range dirs {
		out[i] = byDir[d]
	}
	return out, nil
}

// stat is one figure over the runs: median and range.
type stat []float64

func (s stat) String() string { return s.format(1, "") }

// format prints the median, and the range when runs differ.
func (s stat) format(prec int, unit string) string {
	if len(s) == 0 {
		return "—"
	}
	f := func(v float64) string { return fmt.Sprintf("%.*f", prec, v) }
	out := f(median(s)) + unit
	if len(s) > 1 {
		lo, hi := slices.Min(s), slices.Max(s)
		if f(lo) != f(hi) {
			out += " (" + f(lo) + "–" + f(hi) + ")"
		}
	}
	return out
}

// collect gathers one figure of the named result over the runs.
func collect(runs []runResults, name string, get func(*result) float64) stat {
	var s stat
	for _, r := range runs {
		if x := r[name]; x != nil {
			s = append(s, get(x))
		}
	}
	return s
}

// ratio gathers a/b of two results of the same run, over the runs.
func ratio(runs []runResults, a, b string, get func(*result) float64) stat {
	var s stat
	for _, r := range runs {
		x, y := r[a], r[b]
		if x != nil && y != nil && get(y) != 0 {
			s = append(s, get(x)/get(y))
		}
	}
	return s
}

// embedRows is the order of the embedding table; comparisons pair a Go
// row with the Node row of the same thread count.
var (
	embedRows   = []string{"go-ort-t1", "node-ort-t1", "go-ort-t2", "node-ort-t2", "go-hugot"}
	comparisons = [][2]string{
		{"go-ort-t1", "node-ort-t1"}, {"go-ort-t2", "node-ort-t2"},
		{"go-hugot", "node-ort-t1"}, {"go-hugot", "node-ort-t2"},
	}
)

func printReport(w io.Writer, runs []runResults, set *textSet) error {
	if len(runs) == 0 {
		return fmt.Errorf("no results")
	}
	names := map[string]bool{}
	load := stat{}
	for _, r := range runs {
		for n, x := range r {
			names[n] = true
			if x.LoadAverage >= 0 {
				load = append(load, x.LoadAverage)
			}
		}
	}
	fmt.Fprintf(w, "%d run(s); one-minute load average at the start of the steps: %s\n", len(runs), load.format(2, ""))
	if set != nil {
		fmt.Fprintf(w, "texts: %s; tokens min %d, median %d, mean %.1f, max %d; batches of 32 run %.2f× the tokens (padding); Go tokenization %.2f ms per text\n",
			set.Source, set.Tokens.Min, set.Tokens.P50, set.Tokens.Mean, set.Tokens.Max, set.Tokens.Padded32, set.TokenizeMs)
	}

	rows := slices.Clone(embedRows)
	for n := range names {
		if !slices.Contains(rows, n) && !strings.HasPrefix(n, "ingest") {
			rows = append(rows, n)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| setup | tokenization | texts / pass | embeddings/s (batch 32) | cores used | single calls | single p50 ms | single p99 ms | peak RSS MiB | load + warm s | others' cores |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range rows {
		if !names[n] {
			continue
		}
		var first *result
		for _, r := range runs {
			if first = r[n]; first != nil {
				break
			}
		}
		if first.Kind != "embed" {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %d | %s | %s | %s | %s | %s |\n", n, first.Tokenization, first.Texts,
			collect(runs, n, func(r *result) float64 { return r.EmbedsPerSec }),
			collect(runs, n, func(r *result) float64 { return r.CPUCores }).format(2, ""),
			first.Singles,
			collect(runs, n, func(r *result) float64 { return r.SingleP50Ms }).format(2, ""),
			collect(runs, n, func(r *result) float64 { return r.SingleP99Ms }).format(2, ""),
			collect(runs, n, func(r *result) float64 { return r.PeakRSSMiB }).format(0, ""),
			collect(runs, n, func(r *result) float64 { return r.LoadSeconds }).format(2, ""),
			collect(runs, n, func(r *result) float64 { return r.OthersCores }).format(2, ""))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Go / Node (same run) | embeddings/s ratio | single p50 speed ratio | single p99 speed ratio |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range comparisons {
		if !names[c[0]] || !names[c[1]] {
			continue
		}
		fmt.Fprintf(w, "| %s / %s | %s | %s | %s |\n", c[0], c[1],
			ratio(runs, c[0], c[1], func(r *result) float64 { return r.EmbedsPerSec }).format(3, "×"),
			ratio(runs, c[1], c[0], func(r *result) float64 { return r.SingleP50Ms }).format(3, "×"),
			ratio(runs, c[1], c[0], func(r *result) float64 { return r.SingleP99Ms }).format(3, "×"))
	}
	fmt.Fprintln(w, "(speed ratios: Node's latency ÷ Go's, so above 1 means Go is faster)")

	fmt.Fprintln(w)
	for _, n := range rows {
		lowest, worst := math.Inf(1), 0.0
		for _, r := range runs {
			if x := r[n]; x != nil && x.MinCosine != nil {
				lowest = min(lowest, *x.MinCosine)
				worst = max(worst, *x.MaxAbsDiff)
			}
		}
		if !math.IsInf(lowest, 1) {
			fmt.Fprintf(w, "vectors of %s against go-ort-t1's: lowest cosine %.9f, largest absolute difference %.2g\n", n, lowest, worst)
		}
	}

	var ingest []string
	for n := range names {
		if strings.HasPrefix(n, "ingest") {
			ingest = append(ingest, n)
		}
	}
	if len(ingest) == 0 {
		return nil
	}
	slices.SortFunc(ingest, func(a, b string) int {
		ra, rb := firstOf(runs, a), firstOf(runs, b)
		if ra.Copies != rb.Copies {
			return ra.Copies - rb.Copies
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ingestion | embedder | KB workers | documents | chunks | vectors | seconds | documents/s | chunks/s | peak RSS MiB | others' cores |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range ingest {
		r := firstOf(runs, n)
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n", n, r.Backend, r.KBWorkers, r.Documents, r.Chunks, r.Vectors,
			collect(runs, n, func(r *result) float64 { return r.Seconds }).format(2, ""),
			collect(runs, n, func(r *result) float64 { return r.DocsPerSec }),
			collect(runs, n, func(r *result) float64 { return r.ChunksPerSec }),
			collect(runs, n, func(r *result) float64 { return r.PeakRSSMiB }).format(0, ""),
			collect(runs, n, func(r *result) float64 { return r.OthersCores }).format(2, ""))
	}
	return nil
}

func firstOf(runs []runResults, name string) *result {
	for _, r := range runs {
		if x := r[name]; x != nil {
			return x
		}
	}
	return nil
}
