package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/faultmaven/faultmaven/embed/testmodel"
)

// The two backends are opened once per test binary: ONNX Runtime's
// environment is process-wide, and hugot compiles its buckets at Warm.
var opened struct {
	once       sync.Once
	hugot, ort *Model
	err        error
}

func models(t *testing.T) (hug, onnx *Model) {
	t.Helper()
	dir := testmodel.TestDir(t)
	lib := testmodel.ORTLib(t)
	opened.once.Do(func() {
		opened.ort, opened.err = Open(Config{Dir: dir, Backend: ORT, ORTLib: lib})
		if opened.err != nil {
			return
		}
		opened.hugot, opened.err = Open(Config{Dir: dir, Backend: Hugot, BatchBuckets: []int{1, 8}, SeqBuckets: []int{16, 64}})
		if opened.err == nil {
			opened.err = opened.hugot.Warm(context.Background())
		}
	})
	if opened.err != nil {
		t.Fatal(opened.err)
	}
	return opened.hugot, opened.ort
}

func TestMain(m *testing.M) {
	code := m.Run()
	if opened.hugot != nil {
		_ = opened.hugot.Close()
	}
	if opened.ort != nil {
		_ = opened.ort.Close()
	}
	os.Exit(code)
}

// parityTexts covers short and long texts, text past the tokenizer's
// 128-token truncation, non-Latin scripts, and input both backends must
// survive: empty, blank, invalid UTF-8, NUL bytes.
func parityTexts() []string {
	long := strings.Repeat("kubelet reports PLEG is not healthy; pods stuck in ContainerCreating. ", 40)
	return []string{
		"disk full on /var",
		"java.lang.OutOfMemoryError: GC overhead limit exceeded",
		"x509: certificate has expired or is not yet valid: current time 2026-11-26T01:00:00Z",
		"ERROR 1045 (28000): Access denied for user 'app'@'10.0.3.7' (using password: YES)",
		long,
		"Сервер не отвечает, 接続がタイムアウトしました",
		"",
		"   \n\t ",
		"bad \xff\xfe utf8",
		"nul\x00inside",
		"OOMKilled",
	}
}

func TestBackendsProduceTheSameVectors(t *testing.T) {
	hug, onnx := models(t)
	if hug.Info().Backend != Hugot || onnx.Info().Backend != ORT {
		t.Fatalf("backends %s / %s, want hugot / ort", hug.Info().Backend, onnx.Info().Backend)
	}
	if hug.Dim() != onnx.Dim() || hug.Dim() != testmodel.Tiny.Hidden {
		t.Fatalf("dims %d / %d, want %d", hug.Dim(), onnx.Dim(), testmodel.Tiny.Hidden)
	}
	texts := parityTexts()
	a, err := hug.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := onnx.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	worst := 1.0
	for i := range texts {
		c := Cosine(a[i], b[i])
		worst = min(worst, c)
		if c < 0.9999 {
			t.Errorf("text %d (%.40q): cosine(hugot, ort) = %.6f, want ≥ 0.9999", i, texts[i], c)
		}
		for _, v := range [][]float32{a[i], b[i]} {
			if n := math.Sqrt(cosineNorm(v)); math.Abs(n-1) > 1e-5 {
				t.Errorf("text %d: norm %.6f, want 1", i, n)
			}
		}
	}
	t.Logf("worst cosine(hugot, ort) over %d texts: %.9f", len(texts), worst)
	// Different texts must give different vectors, or parity proves nothing.
	if c := Cosine(b[0], b[1]); c > 0.9999 {
		t.Fatalf("two different texts have cosine %.6f: the model ignores its input", c)
	}
}

func cosineNorm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}

func TestBatchingDoesNotChangeVectors(t *testing.T) {
	hug, onnx := models(t)
	texts := make([]string, 0, 45) // more than one MaxBatch
	for i := 0; i < 45; i++ {
		texts = append(texts, fmt.Sprintf("incident %d: %s", i, strings.Repeat("timeout ", i%9)))
	}
	for _, m := range []*Model{hug, onnx} {
		all, err := m.Embed(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 7, 44} {
			one, err := m.Embed(context.Background(), texts[i:i+1])
			if err != nil {
				t.Fatal(err)
			}
			if c := Cosine(all[i], one[0]); c < 0.99999 {
				t.Fatalf("%s: text %d alone vs in a batch: cosine %.7f", m.Info().Backend, i, c)
			}
		}
	}
}

func TestORTIsSafeForConcurrentUse(t *testing.T) {
	_, onnx := models(t)
	want, err := onnx.Embed(context.Background(), []string{"connection reset by peer"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				got, err := onnx.Embed(context.Background(), []string{"connection reset by peer", fmt.Sprintf("noise %d %d", g, i)})
				if err != nil {
					errs <- err
					return
				}
				if Cosine(got[0], want[0]) < 0.99999 {
					errs <- errors.New("concurrent run changed a vector")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestMissingORTLibraryFallsBackToHugot(t *testing.T) {
	hug, _ := models(t) // ONNX Runtime is already loaded by now
	m, err := Open(Config{Dir: hug.Info().Dir, Backend: ORT, ORTLib: filepath.Join(t.TempDir(), "libonnxruntime.so.1"),
		BatchBuckets: []int{1}, SeqBuckets: []int{16}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info := m.Info()
	if info.Backend != Hugot || !strings.Contains(info.Why, "using the pure-Go hugot backend") {
		t.Fatalf("info %+v: want a hugot fallback that says why", info)
	}
}

func TestInspectExplainsWhatIsMissing(t *testing.T) {
	empty := t.TempDir()
	if _, err := Inspect(empty, ""); !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(empty, "tokenizer.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(empty, ""); !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), ".onnx") {
		t.Fatalf("no onnx: %v", err)
	}
	for _, f := range []string{"a.onnx", "b.onnx"} {
		if err := os.WriteFile(filepath.Join(empty, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Inspect(empty, ""); !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), "2 .onnx files") {
		t.Fatalf("two onnx files: %v", err)
	}
	if f, err := Inspect(empty, "b.onnx"); err != nil || f.Onnx != "b.onnx" {
		t.Fatalf("named onnx file: %+v, %v", f, err)
	}
	if _, err := Inspect(empty, "../b.onnx"); err == nil {
		t.Fatal("an onnx path outside the model directory was accepted")
	}
	f, err := Inspect(testmodel.TestDir(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if f.MaxTokens != 128 { // tokenizer.json truncates at 128, config.json allows 512
		t.Fatalf("MaxTokens = %d, want 128", f.MaxTokens)
	}
}

func TestParseBackend(t *testing.T) {
	for in, want := range map[string]Backend{"": Auto, "auto": Auto, "HUGOT": Hugot, " ort ": ORT} {
		if got, err := ParseBackend(in); err != nil || got != want {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseBackend("cuda"); err == nil {
		t.Error("ParseBackend(cuda) accepted")
	}
}

// FuzzPrepareAndTokenize: whatever a document or query holds, preparation
// yields a text the tokenizer encodes without error (hugot exits the
// process on a tokenizer error), within the token limit, starting [CLS].
func FuzzPrepareAndTokenize(f *testing.F) {
	for _, s := range parityTexts() {
		f.Add(s)
	}
	f.Add(strings.Repeat("a", 20000))
	f.Add("\u200b\u200b")
	f.Add("[CLS] [SEP] [PAD] [UNK] [MASK]")
	dir := testmodel.TestDir(f)
	files, err := Inspect(dir, "")
	if err != nil {
		f.Fatal(err)
	}
	wp, err := newWordpiece(files.Tokenizer, files.MaxTokens)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := prepare(s, files.MaxTokens)
		if p == "" || len(p) > files.MaxTokens*100 {
			t.Fatalf("prepare gave %d bytes", len(p))
		}
		e, err := wp.encode(p)
		if err != nil {
			t.Fatalf("encode(%q): %v", p, err)
		}
		if len(e.ids) < 2 || len(e.ids) > files.MaxTokens || e.ids[0] != 101 {
			t.Fatalf("encode(%q) = %v: want [CLS]… within %d tokens", p, e.ids, files.MaxTokens)
		}
	})
}

func TestCosine(t *testing.T) {
	for _, c := range []struct {
		a, b []float32
		want float64
	}{
		{[]float32{1, 0}, []float32{0, 1}, 0},
		{[]float32{1, 2, 3}, []float32{2, 4, 6}, 1},
		{[]float32{1, 0}, []float32{-1, 0}, -1},
		{[]float32{3, 4}, []float32{4, 3}, 24.0 / 25},
	} {
		if got := Cosine(c.a, c.b); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Cosine(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if got := Cosine([]float32{1}, []float32{1, 2}); !math.IsNaN(got) {
		t.Errorf("lengths differ: %v, want NaN", got)
	}
	if got := Cosine([]float32{0, 0}, []float32{1, 2}); !math.IsNaN(got) {
		t.Errorf("zero vector: %v, want NaN", got)
	}
}
