package model

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ONNX Runtime's environment is process-global: it is initialised once,
// with one library, and never torn down while the process runs (a model
// may be reopened later).
var ortEnv struct {
	sync.Mutex
	lib string
	err error
}

// ORTLibCandidates are the places searched for libonnxruntime when no path
// is configured: FM_ORT_LIB, beside the executable, then the system library
// directories.
func ORTLibCandidates() []string {
	var c []string
	if p := os.Getenv("FM_ORT_LIB"); p != "" {
		c = append(c, p)
	}
	if exe, err := os.Executable(); err == nil {
		c = append(c, filepath.Join(filepath.Dir(exe), "libonnxruntime.so.1"), filepath.Join(filepath.Dir(exe), "libonnxruntime.so"))
	}
	return append(c, "/usr/local/lib/libonnxruntime.so.1", "/usr/local/lib/libonnxruntime.so",
		"/usr/lib/libonnxruntime.so.1", "/usr/lib/libonnxruntime.so")
}

// initORT loads ONNX Runtime from lib (or the first candidate that exists)
// once per process and returns the path it loaded.
func initORT(lib string) (string, error) {
	ortEnv.Lock()
	defer ortEnv.Unlock()
	if ortEnv.lib != "" {
		if lib != "" && lib != ortEnv.lib {
			return "", fmt.Errorf("%w: already loaded from %s, cannot also load %s", ErrORTUnavailable, ortEnv.lib, lib)
		}
		return ortEnv.lib, nil
	}
	if lib == "" {
		for _, c := range ORTLibCandidates() {
			if _, err := os.Stat(c); err == nil {
				lib = c
				break
			}
		}
		if lib == "" {
			return "", fmt.Errorf("%w: libonnxruntime.so not found (set --ort-lib or FM_ORT_LIB)", ErrORTUnavailable)
		}
	} else if _, err := os.Stat(lib); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrORTUnavailable, lib, errors.Unwrap(err))
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrORTUnavailable, lib, err)
	}
	ortEnv.lib = lib
	return lib, nil
}

// ortRunner runs the model through an ONNX Runtime session. Sessions are
// safe for concurrent Run calls.
type ortRunner struct {
	wp      *wordpiece
	session *ort.DynamicAdvancedSession
	inputs  []string // the model's input names, in session order
	pooled  bool     // the output is already [batch, hidden]
	width   int      // the output's last dimension, 0 when symbolic
	mu      sync.RWMutex
	closed  bool
}

func newORTRunner(f Files, cfg Config) (*ortRunner, error) {
	path := filepath.Join(f.Dir, f.Onnx)
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("model: read %s: %w", f.Onnx, err)
	}
	r := &ortRunner{}
	for _, in := range ins {
		switch in.Name {
		case "input_ids", "attention_mask", "token_type_ids":
			r.inputs = append(r.inputs, in.Name)
		default:
			return nil, fmt.Errorf("model: %s: unsupported input %q (want input_ids, attention_mask, token_type_ids)", f.Onnx, in.Name)
		}
	}
	output := ""
	for _, o := range outs {
		if o.Name == "last_hidden_state" || (output == "" && len(o.Dimensions) == 3) {
			output = o.Name
		}
	}
	if output == "" {
		for _, o := range outs {
			if len(o.Dimensions) == 2 {
				output, r.pooled = o.Name, true
				break
			}
		}
	}
	if output == "" {
		return nil, fmt.Errorf("model: %s has no [batch, sequence, hidden] or [batch, hidden] output", f.Onnx)
	}
	for _, o := range outs {
		if o.Name == output && len(o.Dimensions) > 0 && o.Dimensions[len(o.Dimensions)-1] > 0 {
			r.width = int(o.Dimensions[len(o.Dimensions)-1])
		}
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(cfg.Threads); err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("model: session options: %w", err)
	}
	r.session, err = ort.NewDynamicAdvancedSession(path, r.inputs, []string{output}, opts)
	if err != nil {
		return nil, fmt.Errorf("model: load %s in ONNX Runtime: %w", f.Onnx, err)
	}
	if r.wp, err = newWordpiece(f.Tokenizer, f.MaxTokens); err != nil {
		_ = r.session.Destroy()
		return nil, err
	}
	return r, nil
}

// ortGroup is the most texts run through ONNX Runtime in one call. A call
// pads every text to the longest one in it, so run sorts a batch by length
// and runs it in groups of similar length: on runbook chunks of 50–120
// tokens one call of 32 in arrival order computes 1.34× the tokens it
// needs (docs/benchmarks.md).
const ortGroup = 8

func (r *ortRunner) run(texts []string) ([][]float32, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	encs := make([]encoded, len(texts))
	for i, t := range texts {
		e, err := r.wp.encode(t)
		if err != nil {
			return nil, err
		}
		encs[i] = e
	}
	order := make([]int, len(encs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(encs[a].ids) - len(encs[b].ids) })
	vecs := make([][]float32, len(encs))
	group := make([]encoded, 0, ortGroup)
	for start := 0; start < len(order); start += ortGroup {
		idx := order[start:min(len(order), start+ortGroup)]
		group = group[:0]
		for _, i := range idx {
			group = append(group, encs[i])
		}
		out, err := r.runEncoded(group)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			vecs[i] = out[j]
		}
	}
	return vecs, nil
}

// runEncoded runs one call: the texts right-padded to the longest, the
// output mean-pooled over each text's own tokens and L2-normalised.
func (r *ortRunner) runEncoded(encs []encoded) ([][]float32, error) {
	seq := 1
	for _, e := range encs {
		seq = max(seq, len(e.ids))
	}
	b := len(encs)
	ids := make([]int64, b*seq)
	mask := make([]int64, b*seq)
	types := make([]int64, b*seq)
	for i, e := range encs {
		copy(ids[i*seq:], e.ids)
		copy(types[i*seq:], e.types)
		for j := range e.ids {
			mask[i*seq+j] = 1
		}
	}
	shape := ort.NewShape(int64(b), int64(seq))
	values := make([]ort.Value, len(r.inputs))
	defer func() {
		for _, v := range values {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	for i, name := range r.inputs {
		data := ids
		switch name {
		case "attention_mask":
			data = mask
		case "token_type_ids":
			data = types
		}
		t, err := ort.NewTensor(shape, data)
		if err != nil {
			return nil, fmt.Errorf("model: input tensor: %w", err)
		}
		values[i] = t
	}
	outs := []ort.Value{nil}
	if err := r.session.Run(values, outs); err != nil {
		return nil, fmt.Errorf("model: ONNX Runtime run: %w", err)
	}
	defer outs[0].Destroy()
	t, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("model: output is %T, want float32 tensor", outs[0])
	}
	dims := t.GetShape()
	data := t.GetData()
	vecs := make([][]float32, b)
	if r.pooled {
		if len(dims) != 2 || dims[0] != int64(b) {
			return nil, fmt.Errorf("model: output shape %v, want [%d, hidden]", dims, b)
		}
		h := int(dims[1])
		for i := range vecs {
			vecs[i] = append([]float32(nil), data[i*h:(i+1)*h]...)
			normalize(vecs[i])
		}
		return vecs, nil
	}
	if len(dims) != 3 || dims[0] != int64(b) || dims[1] != int64(seq) {
		return nil, fmt.Errorf("model: output shape %v, want [%d, %d, hidden]", dims, b, seq)
	}
	h := int(dims[2])
	for i, e := range encs {
		v := make([]float32, h)
		row := data[i*seq*h:]
		for j := range e.ids {
			tok := row[j*h : (j+1)*h]
			for k, x := range tok {
				v[k] += x
			}
		}
		n := float32(len(e.ids))
		for k := range v {
			v[k] /= n
		}
		normalize(v)
		vecs[i] = v
	}
	return vecs, nil
}

func (r *ortRunner) dim() int { return r.width }

func (r *ortRunner) warm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := r.run([]string{"warm up the session"})
	return err
}

func (r *ortRunner) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.session.Destroy()
}
