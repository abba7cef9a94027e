package testmodel

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/faultmaven/faultmaven/embed/testmodel/onnxpb"
)

// graph accumulates the nodes and initializers of an ONNX graph. Node
// outputs are named after their op and a counter, weights after their place in
// the model, as in a Hugging Face export.
type graph struct {
	nodes []*onnxpb.NodeProto
	inits []*onnxpb.TensorProto
	count int
	rng   normalRNG
}

// op appends a node with one output and returns the output's name.
func (g *graph) op(opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	g.count++
	out := fmt.Sprintf("%s_%d", opType, g.count)
	g.opTo(out, opType, inputs, attrs...)
	return out
}

// opTo appends a node whose one output has the given name.
func (g *graph) opTo(out, opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	g.nodes = append(g.nodes, &onnxpb.NodeProto{
		Name:      "node_" + out,
		OpType:    opType,
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

// ints returns a Constant node holding a 1-D int64 tensor. Shapes, axes and
// slice bounds are Constant nodes rather than initializers: onnx-gomlx needs
// them as compile-time values, and it only folds initializers it guesses
// are constant.
func (g *graph) ints(vals ...int64) string {
	return g.op("Constant", nil, tensorAttr("value", &onnxpb.TensorProto{
		Dims:      []int64{int64(len(vals))},
		DataType:  int32(onnxpb.TensorProto_INT64),
		Int64Data: vals,
	}))
}

// scalar returns a Constant node holding a float32 scalar.
func (g *graph) scalar(v float32) string {
	return g.op("Constant", nil, tensorAttr("value", &onnxpb.TensorProto{
		DataType: int32(onnxpb.TensorProto_FLOAT),
		RawData:  floatBytes([]float32{v}),
	}))
}

// random adds an initializer with N(0, std²) entries and returns its name.
func (g *graph) random(name string, std float64, dims ...int64) string {
	vals := make([]float32, size(dims))
	for i := range vals {
		vals[i] = float32(std * g.rng.norm())
	}
	return g.initializer(name, vals, dims)
}

// filled adds an initializer whose entries are all v and returns its name.
func (g *graph) filled(name string, v float32, dims ...int64) string {
	vals := make([]float32, size(dims))
	for i := range vals {
		vals[i] = v
	}
	return g.initializer(name, vals, dims)
}

func (g *graph) initializer(name string, vals []float32, dims []int64) string {
	g.inits = append(g.inits, &onnxpb.TensorProto{
		Name:     name,
		Dims:     dims,
		DataType: int32(onnxpb.TensorProto_FLOAT),
		RawData:  floatBytes(vals),
	})
	return name
}

// linear is x·W + b with W shaped [in, out], stored as MatMul wants it
// (PyTorch's Linear keeps the transpose).
func (g *graph) linear(x, prefix string, in, out int64) string {
	w := g.random(prefix+".weight", weightStd, in, out)
	b := g.random(prefix+".bias", weightStd, out)
	return g.op("Add", []string{g.op("MatMul", []string{x, w}), b})
}

// layerNorm normalises the last axis with gamma 1 and beta 0, as a freshly
// initialised BERT does. The output gets the name out when it is not empty.
func (g *graph) layerNorm(x, prefix, out string, hidden int64) string {
	gamma := g.filled(prefix+".weight", 1, hidden)
	beta := g.filled(prefix+".bias", 0, hidden)
	attrs := []*onnxpb.AttributeProto{intAttr("axis", -1), floatAttr("epsilon", layerNormEps)}
	if out == "" {
		return g.op("LayerNormalization", []string{x, gamma, beta}, attrs...)
	}
	return g.opTo(out, "LayerNormalization", []string{x, gamma, beta}, attrs...)
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

func intsAttr(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INTS, Ints: v}
}

func floatAttr(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_FLOAT, F: v}
}

func tensorAttr(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_TENSOR, T: t}
}

// tensorValue declares a graph input or output. A dimension is a fixed size
// (int64) or the name of a size known at run time (string).
func tensorValue(name string, elemType onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch d := d.(type) {
		case int64:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
		default:
			panic(fmt.Sprintf("testmodel: dimension %v (%T) is neither int64 nor string", d, d))
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: name,
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(elemType), Shape: shape},
		}},
	}
}

// floatBytes is ONNX raw_data: little-endian IEEE 754 floats.
func floatBytes(vals []float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func size(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// normalRNG draws standard normal numbers from a SplitMix64 stream with the
// Box–Muller transform. It is written out here, rather than taken from
// math/rand, so that a seed gives the same weights with every Go release.
type normalRNG struct {
	state    uint64
	spare    float64
	hasSpare bool
}

func newNormalRNG(seed int64) normalRNG {
	return normalRNG{state: uint64(seed)}
}

func (r *normalRNG) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit returns a uniform number in (0, 1].
func (r *normalRNG) unit() float64 {
	return float64(r.next()>>11+1) / (1 << 53)
}

func (r *normalRNG) norm() float64 {
	if r.hasSpare {
		r.hasSpare = false
		return r.spare
	}
	radius := math.Sqrt(-2 * math.Log(r.unit()))
	sin, cos := math.Sincos(2 * math.Pi * r.unit())
	r.spare, r.hasSpare = radius*sin, true
	return radius * cos
}
