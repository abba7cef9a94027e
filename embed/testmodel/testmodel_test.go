package testmodel

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sugarme/tokenizer/pretrained"
	ort "github.com/yalue/onnxruntime_go"
)

// TestMain tears down ONNX Runtime's process-wide environment, which the
// first test that needs it sets up.
func TestMain(m *testing.M) {
	code := m.Run()
	if ortEnv.err == nil && ortEnv.done {
		if err := ort.DestroyEnvironment(); err != nil {
			fmt.Fprintln(os.Stderr, "destroy ONNX Runtime environment:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var ortEnv struct {
	once sync.Once
	done bool
	err  error
}

// initORT loads ONNX Runtime from ORTLib once per process.
func initORT(t *testing.T) {
	t.Helper()
	lib := ORTLib(t)
	ortEnv.once.Do(func() {
		ort.SetSharedLibraryPath(lib)
		ortEnv.err = ort.InitializeEnvironment()
		ortEnv.done = ortEnv.err == nil
	})
	if ortEnv.err != nil {
		t.Fatal(ortEnv.err)
	}
}

// runner runs the generated model in ONNX Runtime.
type runner struct {
	s      *ort.DynamicAdvancedSession
	hidden int
}

// newRunner opens the test model in ONNX Runtime. A quiet runner does not log
// the errors it returns.
func newRunner(t *testing.T, quiet bool) *runner {
	t.Helper()
	initORT(t)
	dir := TestDir(t)
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	if quiet {
		if err := opts.SetLogSeverityLevel(ort.LoggingLevelFatal); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, "model.onnx"),
		[]string{"input_ids", "attention_mask", "token_type_ids"}, []string{"last_hidden_state"}, opts)
	if err != nil {
		t.Fatalf("load %s in ONNX Runtime: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Destroy() })
	hidden := Tiny.Hidden
	if os.Getenv(EnvTestModelDir) != "" {
		hidden = 0 // taken from the first output
	}
	return &runner{s: s, hidden: hidden}
}

// run returns last_hidden_state for a batch of equally long rows, with its
// shape.
func (r *runner) run(ids, mask [][]int64) ([]float32, ort.Shape, error) {
	b, s := int64(len(ids)), int64(len(ids[0]))
	var flatIDs, flatMask []int64
	for i := range ids {
		flatIDs = append(flatIDs, ids[i]...)
		flatMask = append(flatMask, mask[i]...)
	}
	shape := ort.NewShape(b, s)
	in := make([]ort.Value, 3)
	for i, data := range [][]int64{flatIDs, flatMask, make([]int64, len(flatIDs))} {
		v, err := ort.NewTensor(shape, data)
		if err != nil {
			return nil, nil, err
		}
		defer v.Destroy()
		in[i] = v
	}
	out := []ort.Value{nil}
	if err := r.s.Run(in, out); err != nil {
		return nil, nil, err
	}
	defer out[0].Destroy()
	t, ok := out[0].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, fmt.Errorf("output is %T, want float32 tensor", out[0])
	}
	return append([]float32(nil), t.GetData()...), t.GetShape().Clone(), nil
}

func ones(n int) []int64 {
	m := make([]int64, n)
	for i := range m {
		m[i] = 1
	}
	return m
}

func randomIDs(rng *rand.Rand, n int) []int64 {
	ids := make([]int64, n)
	ids[0] = 101 // [CLS]
	for i := 1; i < n; i++ {
		ids[i] = 1000 + rng.Int64N(int64(Tiny.Vocab-1000))
	}
	return ids
}

func newRand(t *testing.T) *rand.Rand {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0))
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"tiny", func(*Config) {}, true},
		{"zero vocab", func(c *Config) { c.Vocab = 0 }, false},
		{"negative layers", func(c *Config) { c.Layers = -1 }, false},
		{"no positions", func(c *Config) { c.MaxPositions = 0 }, false},
		{"heads do not divide hidden", func(c *Config) { c.Heads = 3 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Tiny
			tc.edit(&c)
			err := c.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", c, err, tc.ok)
			}
			if err != nil {
				if werr := WriteModel(&bytes.Buffer{}, c); !errors.Is(werr, ErrInvalidConfig) {
					t.Fatalf("WriteModel with a bad config = %v, want ErrInvalidConfig", werr)
				}
			}
		})
	}
}

func TestWriteModelDeterministic(t *testing.T) {
	write := func(c Config) []byte {
		var b bytes.Buffer
		if err := WriteModel(&b, c); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b := write(Tiny), write(Tiny)
	if !bytes.Equal(a, b) {
		t.Fatal("two models written from the same config differ")
	}
	other := Tiny
	other.Seed++
	if c := write(other); bytes.Equal(a, c) {
		t.Fatal("models with different seeds are identical")
	} else if len(c) != len(a) {
		t.Fatalf("a different seed changed the size: %d vs %d bytes", len(c), len(a))
	}
}

func TestORTOutput(t *testing.T) {
	r := newRunner(t, false)
	rng := newRand(t)
	for _, shape := range []struct{ batch, seq int }{{1, 1}, {2, 7}, {1, Tiny.MaxPositions}} {
		t.Run(fmt.Sprintf("%dx%d", shape.batch, shape.seq), func(t *testing.T) {
			var ids, mask [][]int64
			for range shape.batch {
				ids = append(ids, randomIDs(rng, shape.seq))
				mask = append(mask, ones(shape.seq))
			}
			out, got, err := r.run(ids, mask)
			if err != nil {
				t.Fatal(err)
			}
			h := r.hidden
			if h == 0 {
				h = int(got[len(got)-1])
			}
			if want := ort.NewShape(int64(shape.batch), int64(shape.seq), int64(h)); !got.Equals(want) {
				t.Fatalf("output shape %v, want %v", got, want)
			}
			distinct := false
			for i, v := range out {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("output[%d] = %v", i, v)
				}
				distinct = distinct || v != out[0]
			}
			if !distinct {
				t.Fatalf("all %d outputs equal %v", len(out), out[0])
			}
		})
	}
}

func TestORTRejectsTooLongSequence(t *testing.T) {
	if os.Getenv(EnvTestModelDir) != "" {
		t.Skip("the limit checked is Tiny's")
	}
	r := newRunner(t, true)
	n := Tiny.MaxPositions + 1
	if _, _, err := r.run([][]int64{randomIDs(newRand(t), n)}, [][]int64{ones(n)}); err == nil {
		t.Fatalf("a sequence of %d tokens ran on a model with %d positions", n, Tiny.MaxPositions)
	}
}

// TestORTAttentionMask checks that padding is invisible: a sequence's hidden
// states are the same alone and right-padded in a longer batch.
func TestORTAttentionMask(t *testing.T) {
	r := newRunner(t, false)
	rng := newRand(t)
	const short, long = 5, 12
	seq := randomIDs(rng, short)
	alone, _, err := r.run([][]int64{seq}, [][]int64{ones(short)})
	if err != nil {
		t.Fatal(err)
	}
	padded := append(append([]int64(nil), seq...), make([]int64, long-short)...)
	paddedMask := append(ones(short), make([]int64, long-short)...)
	// Non-zero ids under the mask too: what is masked must not matter at all.
	for i := short; i < long; i++ {
		padded[i] = 2000 + int64(i)
	}
	batch, shape, err := r.run([][]int64{padded, randomIDs(rng, long)}, [][]int64{paddedMask, ones(long)})
	if err != nil {
		t.Fatal(err)
	}
	h := int(shape[2])
	var maxDiff float64
	for i := range short * h {
		maxDiff = math.Max(maxDiff, math.Abs(float64(alone[i]-batch[i])))
	}
	t.Logf("max |alone - padded| = %.3g", maxDiff)
	if maxDiff > 1e-5 {
		t.Fatalf("padding changed the real tokens' hidden states by up to %g", maxDiff)
	}
	unmasked, _, err := r.run([][]int64{padded}, [][]int64{ones(long)})
	if err != nil {
		t.Fatal(err)
	}
	var change float64
	for i := range short * h {
		change = math.Max(change, math.Abs(float64(unmasked[i]-alone[i])))
	}
	if change < 1e-3 {
		t.Fatalf("attending to the extra tokens changed the hidden states by only %g: the test cannot see masking", change)
	}
}

func TestORTTokenIDsMatter(t *testing.T) {
	r := newRunner(t, false)
	rng := newRand(t)
	a := randomIDs(rng, 8)
	b := append([]int64(nil), a...)
	b[4] = 1000 + (a[4]-1000+1)%int64(Tiny.Vocab-1000)
	outA, shape, err := r.run([][]int64{a}, [][]int64{ones(8)})
	if err != nil {
		t.Fatal(err)
	}
	outB, _, err := r.run([][]int64{b}, [][]int64{ones(8)})
	if err != nil {
		t.Fatal(err)
	}
	// Every position attends to the changed token, so every position changes.
	h := int(shape[2])
	for pos := range 8 {
		var diff float64
		for i := pos * h; i < (pos+1)*h; i++ {
			diff = math.Max(diff, math.Abs(float64(outA[i]-outB[i])))
		}
		if diff < 1e-4 {
			t.Errorf("position %d: changing token 4 changed the hidden state by only %g", pos, diff)
		}
	}
}

func TestTokenizer(t *testing.T) {
	tk, err := pretrained.FromFile(filepath.Join(TestDir(t), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tk.EncodeSingle("disk full on /var", true)
	if err != nil {
		t.Fatal(err)
	}
	ids := enc.GetIds()
	t.Logf("ids %v", ids)
	if len(ids) < 3 || ids[0] != 101 {
		t.Fatalf("ids %v, want [CLS]=101 first", ids)
	}
}
