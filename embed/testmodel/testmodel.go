package testmodel

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/faultmaven/faultmaven/embed/testmodel/onnxpb"
)

// TokenizerModule is the Go module, at a fixed version, whose
// all_minilm_l6_v2/tokenizer.json (all-MiniLM-L6-v2's tokenizer, Apache-2.0)
// Generate copies beside the model. It is fetched through the Go module proxy
// like any dependency, so nothing is vendored into this repository.
const TokenizerModule = "github.com/clems4ever/all-minilm-l6-v2-go@v0.0.9"

const (
	tokenizerInModule = "all_minilm_l6_v2/tokenizer.json"
	licenseInModule   = "LICENSE.md"

	// opsetVersion is the ai.onnx operator set the graph is written against:
	// 17 is the first with LayerNormalization. irVersion is the IR that opset
	// 17 came with.
	opsetVersion = 17
	irVersion    = 8

	weightStd    = 0.02
	layerNormEps = 1e-12
	// maskedScore is added to the attention scores of padding tokens, as in
	// the original BERT: exp(-10000) is 0 in float32.
	maskedScore = -10000
	typeVocab   = 2
)

// ErrInvalidConfig is returned for a Config that does not describe a model.
var ErrInvalidConfig = errors.New("testmodel: invalid config")

// Config is the shape of a BERT encoder and the seed of its random weights.
type Config struct {
	Vocab        int // token ids are in [0, Vocab)
	Hidden       int // width of the hidden states and of the output
	Layers       int
	Heads        int // attention heads; must divide Hidden
	Intermediate int // width of the feed-forward layer
	MaxPositions int // longest sequence the model accepts
	Seed         int64
}

var (
	// Tiny is small enough to generate and run in well under a second; its
	// vocabulary matches the all-MiniLM-L6-v2 tokenizer.
	Tiny = Config{Vocab: 30522, Hidden: 32, Layers: 2, Heads: 2, Intermediate: 64, MaxPositions: 512, Seed: 1}
	// MiniLMShape has the shape, hence the compute and memory, of
	// all-MiniLM-L6-v2, for benchmarks.
	MiniLMShape = Config{Vocab: 30522, Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536, MaxPositions: 512, Seed: 1}
)

// Validate reports, wrapping ErrInvalidConfig, why c does not describe a model.
func (c Config) Validate() error {
	switch {
	case c.Vocab < 1 || c.Hidden < 1 || c.Layers < 1 || c.Heads < 1 || c.Intermediate < 1 || c.MaxPositions < 1:
		return fmt.Errorf("%w: every size must be positive: %+v", ErrInvalidConfig, c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("%w: hidden size %d is not a multiple of the %d heads", ErrInvalidConfig, c.Hidden, c.Heads)
	}
	return nil
}

// WriteModel writes c's BERT encoder as an ONNX model (opset 17). Its inputs
// input_ids, attention_mask and token_type_ids are int64 [batch, sequence];
// its output last_hidden_state is float32 [batch, sequence, Hidden]. Any
// sequence length up to MaxPositions works. The bytes depend only on c (and
// the CPU architecture, through floating-point rounding).
func WriteModel(w io.Writer, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	g := &graph{rng: newNormalRNG(c.Seed)}
	hidden, heads := int64(c.Hidden), int64(c.Heads)
	headDim := hidden / heads

	// Embeddings. Position ids are 0..sequence-1, taken as the first rows of
	// the position table, sliced to the length of this batch's input.
	word := g.random("embeddings.word_embeddings.weight", weightStd, int64(c.Vocab), hidden)
	pos := g.random("embeddings.position_embeddings.weight", weightStd, int64(c.MaxPositions), hidden)
	typ := g.random("embeddings.token_type_embeddings.weight", weightStd, typeVocab, hidden)
	seqLen := g.op("Shape", []string{"input_ids"}, intAttr("start", 1), intAttr("end", 2))
	positions := g.op("Slice", []string{pos, g.ints(0), seqLen, g.ints(0)})
	x := g.op("Add", []string{
		g.op("Add", []string{g.op("Gather", []string{word, "input_ids"}), g.op("Gather", []string{typ, "token_type_ids"})}),
		positions,
	})
	x = g.layerNorm(x, "embeddings.LayerNorm", "", hidden)

	// Additive attention mask, [batch, 1, 1, sequence]: 0 where the mask is 1,
	// maskedScore where it is 0.
	mask := g.op("Cast", []string{g.op("Unsqueeze", []string{"attention_mask", g.ints(1, 2)})},
		intAttr("to", int64(onnxpb.TensorProto_FLOAT)))
	maskBias := g.op("Mul", []string{g.op("Sub", []string{g.scalar(1), mask}), g.scalar(maskedScore)})

	splitHeads := g.ints(0, 0, heads, headDim) // [b, s, hidden] -> [b, s, heads, headDim]; 0 keeps a dim
	mergeHeads := g.ints(0, 0, hidden)
	scale := g.scalar(float32(1 / math.Sqrt(float64(headDim))))
	half, one, invSqrt2 := g.scalar(0.5), g.scalar(1), g.scalar(float32(1/math.Sqrt2))

	for l := range c.Layers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		project := func(name string, perm ...int64) string {
			y := g.linear(x, p+"attention.self."+name, hidden, hidden)
			return g.op("Transpose", []string{g.op("Reshape", []string{y, splitHeads})}, intsAttr("perm", perm...))
		}
		q := project("query", 0, 2, 1, 3) // [b, heads, s, headDim]
		k := project("key", 0, 2, 3, 1)   // [b, heads, headDim, s]
		v := project("value", 0, 2, 1, 3) // [b, heads, s, headDim]
		scores := g.op("Add", []string{g.op("Mul", []string{g.op("MatMul", []string{q, k}), scale}), maskBias})
		probs := g.op("Softmax", []string{scores}, intAttr("axis", -1))
		ctx := g.op("Transpose", []string{g.op("MatMul", []string{probs, v})}, intsAttr("perm", 0, 2, 1, 3))
		ctx = g.op("Reshape", []string{ctx, mergeHeads})
		attn := g.linear(ctx, p+"attention.output.dense", hidden, hidden)
		x = g.layerNorm(g.op("Add", []string{attn, x}), p+"attention.output.LayerNorm", "", hidden)

		// Feed-forward with the exact (erf) GELU: h·½·(1 + erf(h/√2)).
		h := g.linear(x, p+"intermediate.dense", hidden, int64(c.Intermediate))
		erf := g.op("Erf", []string{g.op("Mul", []string{h, invSqrt2})})
		h = g.op("Mul", []string{g.op("Mul", []string{h, half}), g.op("Add", []string{erf, one})})
		out := g.linear(h, p+"output.dense", int64(c.Intermediate), hidden)
		name := ""
		if l == c.Layers-1 {
			name = "last_hidden_state"
		}
		x = g.layerNorm(g.op("Add", []string{out, x}), p+"output.LayerNorm", name, hidden)
	}

	model := &onnxpb.ModelProto{
		IrVersion:       irVersion,
		ProducerName:    "faultmaven-testmodel",
		ProducerVersion: fmt.Sprint(generatorVersion),
		DocString:       fmt.Sprintf("BERT encoder with random weights, not a trained model: %+v", c),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Version: opsetVersion}},
		Graph: &onnxpb.GraphProto{
			Name:        "bert",
			Node:        g.nodes,
			Initializer: g.inits,
			Input: []*onnxpb.ValueInfoProto{
				tensorValue("input_ids", onnxpb.TensorProto_INT64, "batch", "sequence"),
				tensorValue("attention_mask", onnxpb.TensorProto_INT64, "batch", "sequence"),
				tensorValue("token_type_ids", onnxpb.TensorProto_INT64, "batch", "sequence"),
			},
			Output: []*onnxpb.ValueInfoProto{
				tensorValue("last_hidden_state", onnxpb.TensorProto_FLOAT, "batch", "sequence", hidden),
			},
		},
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(model)
	if err != nil {
		return fmt.Errorf("testmodel: marshal model: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// Generate writes into dir (creating it) what a sentence-transformers export
// holds: model.onnx (WriteModel), tokenizer.json (from TokenizerModule, found
// or fetched with "go mod download"), a BERT config.json, and a NOTICE and
// TOKENIZER-LICENSE for the tokenizer.
func Generate(dir string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	modDir, err := tokenizerModuleDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	cfg, err := json.MarshalIndent(bertConfig(c), "", "  ")
	if err != nil {
		return fmt.Errorf("testmodel: config.json: %w", err)
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{"model.onnx", func(w io.Writer) error { return WriteModel(w, c) }},
		{"tokenizer.json", copyFrom(filepath.Join(modDir, tokenizerInModule))},
		{"TOKENIZER-LICENSE", copyFrom(filepath.Join(modDir, licenseInModule))},
		{"config.json", writeBytes(append(cfg, '\n'))},
		{"NOTICE", writeBytes([]byte(notice))},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return fmt.Errorf("testmodel: write %s: %w", f.name, err)
		}
	}
	return nil
}

const notice = `model.onnx holds a BERT encoder with random weights generated by
github.com/faultmaven/faultmaven/embed/testmodel. It is not a trained model.

tokenizer.json is the tokenizer of sentence-transformers/all-MiniLM-L6-v2 as
shipped in the Go module ` + TokenizerModule + `
(file ` + tokenizerInModule + `), licensed under the Apache License 2.0;
see TOKENIZER-LICENSE.
`

// bertConfig is config.json as Hugging Face writes it for a BERT model; hugot
// reads max_position_embeddings and pad_token_id from it.
func bertConfig(c Config) any {
	return struct {
		Architectures             []string `json:"architectures"`
		ModelType                 string   `json:"model_type"`
		VocabSize                 int      `json:"vocab_size"`
		HiddenSize                int      `json:"hidden_size"`
		NumHiddenLayers           int      `json:"num_hidden_layers"`
		NumAttentionHeads         int      `json:"num_attention_heads"`
		IntermediateSize          int      `json:"intermediate_size"`
		HiddenAct                 string   `json:"hidden_act"`
		MaxPositionEmbeddings     int      `json:"max_position_embeddings"`
		TypeVocabSize             int      `json:"type_vocab_size"`
		LayerNormEps              float64  `json:"layer_norm_eps"`
		InitializerRange          float64  `json:"initializer_range"`
		PadTokenID                int      `json:"pad_token_id"`
		HiddenDropoutProb         float64  `json:"hidden_dropout_prob"`
		AttentionProbsDropoutProb float64  `json:"attention_probs_dropout_prob"`
		TorchDtype                string   `json:"torch_dtype"`
	}{
		Architectures: []string{"BertModel"}, ModelType: "bert",
		VocabSize: c.Vocab, HiddenSize: c.Hidden, NumHiddenLayers: c.Layers, NumAttentionHeads: c.Heads,
		IntermediateSize: c.Intermediate, HiddenAct: "gelu", MaxPositionEmbeddings: c.MaxPositions,
		TypeVocabSize: typeVocab, LayerNormEps: layerNormEps, InitializerRange: weightStd, TorchDtype: "float32",
	}
}

// tokenizerModuleDir returns TokenizerModule's directory in the module cache,
// downloading it first if needed. It runs outside any module, so the
// repository's go.mod and go.sum are not touched.
func tokenizerModuleDir() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testmodel: the go command is needed to fetch the tokenizer (%s): %w", TokenizerModule, err)
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", TokenizerModule)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil && runErr == nil {
		return "", fmt.Errorf("testmodel: go mod download %s: %w", TokenizerModule, err)
	}
	if runErr != nil || info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("testmodel: go mod download %s: %v %s %s", TokenizerModule, runErr, info.Error, bytes.TrimSpace(stderr.Bytes()))
	}
	return info.Dir, nil
}

// writeFile writes path through a temporary file in the same directory, so a
// failed write leaves no truncated file behind.
func writeFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func copyFrom(src string) func(io.Writer) error {
	return func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}
