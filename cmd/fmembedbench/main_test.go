package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/embed/testmodel"
)

// TestMain lets the test binary stand in for fmembedbench when the all
// command starts "<binary> embed …" and the like as subprocesses.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "texts", "embed", "ingest", "report":
			if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
				fmt.Fprintln(os.Stderr, "fmembedbench:", err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

const corpus = "../../testdata/kb/runbooks"

// TestAllOnTheTinyModel runs every step, as the Makefile does, on the tiny
// generated model with a few texts and two copies of the corpus, and
// checks the results hang together. The Node steps run when Node and the
// onnxruntime-node package that make ort unpacks are here.
func TestAllOnTheTinyModel(t *testing.T) {
	dir := testmodel.TestDir(t)
	lib := testmodel.ORTLib(t)
	out := t.TempDir()
	node, ortNode := "", filepath.Join(filepath.Dir(lib), "node_modules", "onnxruntime-node")
	if p, err := exec.LookPath("node"); err == nil {
		if _, err := os.Stat(filepath.Join(ortNode, "package.json")); err == nil {
			node = p
		}
	}
	if node == "" {
		t.Logf("no node or no %s: the Node steps are not run", ortNode)
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	err := run(ctx, []string{"all", "-model", dir, "-corpus", corpus, "-out", out, "-ort-lib", lib,
		"-n", "8", "-passes", "1", "-singles", "4", "-hugot-n", "2", "-hugot-singles", "2", "-copies", "2",
		"-quiet-wait", "0", "-node", node, "-node-script", "../../embed/model/bench/node_embed.js", "-ort-node", ortNode,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("all: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	report := stdout.String()
	t.Log(report)

	runs, err := loadRuns([]string{filepath.Join(out, "run-1")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"go-ort-t1", "go-ort-t2", "go-hugot", "ingest-none-x1", "ingest-ort-x1", "ingest-none-x2", "ingest-ort-x2", "ingest-ort-x2-kbw1"}
	if node != "" {
		want = append(want, "node-ort-t1", "node-ort-t2")
	}
	for _, name := range want {
		r := runs[0][name]
		if r == nil {
			t.Errorf("no %s result", name)
			continue
		}
		if !strings.Contains(report, "| "+name+" |") {
			t.Errorf("the report has no %s row", name)
		}
		if r.PeakRSSMiB <= 0 {
			t.Errorf("%s: peak RSS %.1f MiB", name, r.PeakRSSMiB)
		}
		switch r.Kind {
		case "embed":
			if r.EmbedsPerSec <= 0 || r.SingleP50Ms <= 0 || r.SingleP50Ms > r.SingleP99Ms || r.Dim != testmodel.Tiny.Hidden {
				t.Errorf("%s: %.1f embeddings/s, p50 %.2f ms, p99 %.2f ms, dim %d", name, r.EmbedsPerSec, r.SingleP50Ms, r.SingleP99Ms, r.Dim)
			}
			if name != "go-ort-t1" && (r.MinCosine == nil || *r.MinCosine < 0.9999) {
				t.Errorf("%s: vectors not checked against go-ort-t1's, or too far from them: %v", name, r.MinCosine)
			}
		case "ingest":
			docs := 25 * r.Copies
			if r.Documents != docs || r.Chunks < docs || r.DocsPerSec <= 0 {
				t.Errorf("%s: %d documents (want %d), %d chunks, %.1f documents/s", name, r.Documents, docs, r.Chunks, r.DocsPerSec)
			}
			if wantVecs := map[string]int{"none": 0, "ort": r.Chunks}[r.Backend]; r.Vectors != wantVecs {
				t.Errorf("%s: %d vectors for %d chunks", name, r.Vectors, r.Chunks)
			}
		}
	}
	if !strings.Contains(report, "go-ort-t2 against go-ort-t1's") {
		t.Error("the report does not give the vector agreement")
	}
}

// The agreement check must be able to fail: vectors compared with
// someone else's are refused.
func TestEmbedRefusesVectorsThatDisagree(t *testing.T) {
	dir := testmodel.TestDir(t)
	lib := testmodel.ORTLib(t)
	tmp := t.TempDir()
	texts := filepath.Join(tmp, "texts.json")
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"texts", "-model", dir, "-corpus", corpus, "-n", "3", "-out", texts}, &stderr, &stderr); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	ref := filepath.Join(tmp, "ref.f32")
	wrong := make([][]float32, 3)
	for i := range wrong {
		wrong[i] = make([]float32, testmodel.Tiny.Hidden)
		wrong[i][i] = 1
	}
	if err := writeVectors(ref, wrong); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"embed", "-backend", "ort", "-ort-lib", lib, "-model", dir, "-texts", texts,
		"-passes", "1", "-singles", "1", "-vectors-ref", ref}, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "vectors differ") {
		t.Fatalf("embed against unrelated vectors: %v, want a refusal", err)
	}
}

func TestSpreadPicksEvenly(t *testing.T) {
	tests := []struct {
		n, k int
		want []int
	}{
		{5, 0, []int{0, 1, 2, 3, 4}},
		{5, 9, []int{0, 1, 2, 3, 4}},
		{8, 4, []int{0, 2, 4, 6}},
		{256, 3, []int{0, 85, 170}},
	}
	for _, tc := range tests {
		if got := spread(tc.n, tc.k); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("spread(%d, %d) = %v, want %v", tc.n, tc.k, got, tc.want)
		}
	}
}

func TestCopiesAreDistinctDocuments(t *testing.T) {
	docs, err := readCorpus(corpus)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		for k := 1; k <= 3; k++ {
			title, body := copyOf(d, k)
			if seen[title] || seen[body] || !strings.Contains(body, title) {
				t.Fatalf("%s copy %d: title %q repeats or is not in the body", d.name, k, title)
			}
			seen[title], seen[body] = true, true
		}
	}
}

func TestStatFormat(t *testing.T) {
	tests := []struct {
		s    stat
		want string
	}{
		{nil, "—"},
		{stat{2}, "2.0"},
		{stat{3, 1, 2}, "2.0 (1.0–3.0)"},
		{stat{1, 1.01}, "1.0"},
	}
	for _, tc := range tests {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%v: %q, want %q", []float64(tc.s), got, tc.want)
		}
	}
}
