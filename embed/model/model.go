// Package model runs a sentence-embedding model: an ONNX encoder plus its
// Hugging Face tokenizer.json, mean-pooled over the attention mask and L2
// normalised. Two backends produce the same vectors for the same model:
//
//   - hugot: hugot's pure-Go session (GoMLX). No native dependency, always
//     available, slow on CPU for a real model. It compiles one graph per
//     (batch, sequence) bucket, so the buckets are restricted and every one
//     is compiled by Warm before the model is used.
//   - ort: ONNX Runtime through github.com/yalue/onnxruntime_go. Needs
//     libonnxruntime.so at run time (dlopen); about 20× faster. It tokenizes
//     BERT WordPiece tokenizers with this package's own encoder (bert.go),
//     which produces exactly the ids of the pure-Go tokenizer hugot uses
//     (github.com/sugarme/tokenizer; differential and fuzz tests) about 85×
//     faster, and uses that tokenizer itself for anything else.
//
// Both cut token ids at the attention mask (the sentence-transformers
// tokenizer pads every text to 128), cap them at the model's position limit,
// and run batches of at most Config.MaxBatch texts.
//
// A Model is safe for concurrent use.
package model

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Backend names a backend.
type Backend string

// Backends. Auto picks ort when its library is found, hugot otherwise.
const (
	Auto  Backend = "auto"
	Hugot Backend = "hugot"
	ORT   Backend = "ort"
)

// ParseBackend validates a --embed-backend value.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(strings.ToLower(strings.TrimSpace(s))); b {
	case Auto, Hugot, ORT:
		return b, nil
	case "":
		return Auto, nil
	}
	return "", fmt.Errorf("embed backend %q: want auto, hugot or ort", s)
}

// Errors.
var (
	// ErrNoModel: the directory holds no usable model (no .onnx file or no
	// tokenizer.json).
	ErrNoModel = errors.New("model: no embedding model")
	// ErrClosed: the model was closed.
	ErrClosed = errors.New("model: closed")
	// ErrORTUnavailable: ONNX Runtime's shared library could not be loaded.
	ErrORTUnavailable = errors.New("model: ONNX Runtime library unavailable")
)

// Config configures Open. Zero fields take the defaults.
type Config struct {
	Dir     string  // the model directory: one .onnx file (or OnnxFile) and tokenizer.json
	Backend Backend // default Auto
	// OnnxFile picks the .onnx file, relative to Dir, when there are several.
	OnnxFile string
	// ORTLib is the path of libonnxruntime.so. Empty: FM_ORT_LIB, then the
	// places listed by ORTLibCandidates.
	ORTLib string
	// MaxBatch is the most texts run through the model at once (default 32).
	MaxBatch int
	// BatchBuckets and SeqBuckets are the shapes hugot compiles (defaults
	// {1, 8, MaxBatch} and {32, 128, MaxTokens} cut at MaxTokens). Unused by
	// ort, which needs no compilation.
	BatchBuckets []int
	SeqBuckets   []int
	// Threads is ONNX Runtime's intra-op thread count per run (default 1:
	// the embedding pool runs one embedder per core).
	Threads int
	Logger  *zap.Logger
}

func (c *Config) ensureDefaults() {
	if c.Backend == "" {
		c.Backend = Auto
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 32
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Info describes an opened model.
type Info struct {
	// ID identifies the model by content: the directory name and a hash of
	// the ONNX file and tokenizer. Vectors made under another ID are stale.
	ID        string  `json:"id"`
	Dir       string  `json:"dir"`
	OnnxFile  string  `json:"onnx_file"`
	Backend   Backend `json:"backend"`
	Dim       int     `json:"dim"`
	MaxTokens int     `json:"max_tokens"`
	// Why explains how the backend was chosen (e.g. "ort library not found
	// at …, using hugot").
	Why string `json:"why,omitempty"`
}

// runner is one backend: it embeds at most MaxBatch prepared texts.
type runner interface {
	run(texts []string) ([][]float32, error)
	// dim is the vector width from the model's metadata, 0 if unknown.
	dim() int
	warm(ctx context.Context) error
	close() error
}

// Model is an opened embedding model.
type Model struct {
	info Info
	cfg  Config
	r    runner
}

// Open loads the model in cfg.Dir with the chosen backend. With Auto, or
// with ORT when the library cannot be loaded, it falls back to hugot and
// says why in Info.Why and the log.
func Open(cfg Config) (*Model, error) {
	cfg.ensureDefaults()
	files, err := Inspect(cfg.Dir, cfg.OnnxFile)
	if err != nil {
		return nil, err
	}
	id, err := fingerprint(files)
	if err != nil {
		return nil, err
	}
	info := Info{ID: id, Dir: files.Dir, OnnxFile: files.Onnx, MaxTokens: files.MaxTokens}
	var r runner
	switch cfg.Backend {
	case ORT, Auto:
		lib, lerr := initORT(cfg.ORTLib)
		if lerr == nil {
			r, err = newORTRunner(files, cfg)
			if err != nil {
				return nil, err
			}
			info.Backend, info.Why = ORT, "ONNX Runtime "+lib
			break
		}
		why := fmt.Sprintf("%v; using the pure-Go hugot backend", lerr)
		if cfg.Backend == ORT {
			why = "--embed-backend ort, but " + why
		}
		cfg.Logger.Warn("ONNX Runtime not available, embeddings use hugot (slower)", zap.String("reason", lerr.Error()))
		info.Why = why
		fallthrough
	case Hugot:
		if r == nil {
			r, err = newHugotRunner(files, cfg)
			if err != nil {
				return nil, err
			}
			info.Backend = Hugot
			if info.Why == "" {
				info.Why = "hugot (pure Go)"
			}
		}
	default:
		return nil, fmt.Errorf("model: unknown backend %q", cfg.Backend)
	}
	m := &Model{info: info, cfg: cfg, r: r}
	if d := r.dim(); d > 0 {
		m.info.Dim = d
		return m, nil
	}
	// The output's width is not in the model's metadata: run once to learn
	// it (for hugot this compiles a bucket at start, which Warm would do).
	probe, err := r.run([]string{"probe"})
	if err != nil {
		_ = r.close()
		return nil, fmt.Errorf("model: %s: first run failed: %w", files.Onnx, err)
	}
	m.info.Dim = len(probe[0])
	return m, nil
}

// Info describes the model.
func (m *Model) Info() Info { return m.info }

// Dim is the length of every vector.
func (m *Model) Dim() int { return m.info.Dim }

// Warm runs every shape the backend compiles once, so that no later call
// pays a compilation. hugot needs it (seconds per bucket for a real model);
// for ort it is one short run.
func (m *Model) Warm(ctx context.Context) error { return m.r.warm(ctx) }

// Embed returns one unit-length vector per text, in order. Texts are made
// valid UTF-8 and cut to a length the tokenizer would truncate anyway.
func (m *Model) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += m.cfg.MaxBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(len(texts), start+m.cfg.MaxBatch)
		batch := make([]string, end-start)
		for i, t := range texts[start:end] {
			batch[i] = prepare(t, m.info.MaxTokens)
		}
		vecs, err := m.r.run(batch)
		if err != nil {
			return nil, err
		}
		if len(vecs) != len(batch) {
			return nil, fmt.Errorf("model: backend returned %d vectors for %d texts", len(vecs), len(batch))
		}
		out = append(out, vecs...)
	}
	return out, nil
}

// Close releases the backend.
func (m *Model) Close() error { return m.r.close() }

// prepare makes a text safe for both tokenizers: valid UTF-8, no NUL, not
// empty, and no longer than maxTokens tokens could cover (a word piece spans
// at most 100 bytes: longer words become one [UNK]).
func prepare(s string, maxTokens int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.ReplaceAll(s, "\x00", " ")
	if limit := maxTokens * 100; len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	if strings.TrimSpace(s) == "" {
		return "."
	}
	return s
}

// Files are the parts of a model directory.
type Files struct {
	Dir       string
	Onnx      string // relative to Dir
	Tokenizer string // absolute
	// MaxTokens is the tokenizer's truncation length, capped by the model's
	// max_position_embeddings (config.json); 512 when neither says.
	MaxTokens int
}

// Inspect checks that dir holds a model: exactly one .onnx file (or the
// named one) and tokenizer.json.
func Inspect(dir, onnxFile string) (Files, error) {
	if dir == "" {
		return Files{}, fmt.Errorf("%w: no model directory given", ErrNoModel)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Files{}, fmt.Errorf("%w: %v", ErrNoModel, err)
	}
	f := Files{Dir: abs, Tokenizer: filepath.Join(abs, "tokenizer.json")}
	if _, err := os.Stat(f.Tokenizer); err != nil {
		return Files{}, fmt.Errorf("%w: %s has no tokenizer.json", ErrNoModel, abs)
	}
	if onnxFile != "" {
		if filepath.IsAbs(onnxFile) || strings.Contains(onnxFile, "..") {
			return Files{}, fmt.Errorf("%w: onnx file %q must be relative to the model directory", ErrNoModel, onnxFile)
		}
		if _, err := os.Stat(filepath.Join(abs, onnxFile)); err != nil {
			return Files{}, fmt.Errorf("%w: %s has no %s", ErrNoModel, abs, onnxFile)
		}
		f.Onnx = onnxFile
	} else {
		matches, _ := filepath.Glob(filepath.Join(abs, "*.onnx"))
		switch len(matches) {
		case 0:
			return Files{}, fmt.Errorf("%w: %s has no .onnx file", ErrNoModel, abs)
		case 1:
			f.Onnx = filepath.Base(matches[0])
		default:
			return Files{}, fmt.Errorf("%w: %s has %d .onnx files; name one with --embed-onnx-file", ErrNoModel, abs, len(matches))
		}
	}
	f.MaxTokens = maxTokens(abs, f.Tokenizer)
	return f, nil
}

// maxTokens reads the tokenizer's truncation length and the model's
// position limit; the smaller wins.
func maxTokens(dir, tokenizerPath string) int {
	limit := 512
	var cfg struct {
		MaxPositionEmbeddings int `json:"max_position_embeddings"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil && json.Unmarshal(b, &cfg) == nil && cfg.MaxPositionEmbeddings > 0 {
		limit = cfg.MaxPositionEmbeddings
	}
	var tk struct {
		Truncation *struct {
			MaxLength int `json:"max_length"`
		} `json:"truncation"`
	}
	if b, err := os.ReadFile(tokenizerPath); err == nil && json.Unmarshal(b, &tk) == nil && tk.Truncation != nil && tk.Truncation.MaxLength > 0 {
		limit = min(limit, tk.Truncation.MaxLength)
	}
	return limit
}

// fingerprint hashes the files that decide the vectors.
func fingerprint(f Files) (string, error) {
	h := sha256.New()
	for _, p := range []string{filepath.Join(f.Dir, f.Onnx), f.Tokenizer} {
		file, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("model: %w", err)
		}
		_, err = io.Copy(h, file)
		file.Close()
		if err != nil {
			return "", fmt.Errorf("model: read %s: %w", p, err)
		}
	}
	return filepath.Base(f.Dir) + "@" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// normalize scales v to unit length in place; a zero vector stays zero.
func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

// Cosine is the cosine similarity of two vectors, computed in float64 (for
// comparing backends and runs, not on the search path); NaN when their
// lengths differ or either is zero.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}
