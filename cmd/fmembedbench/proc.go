package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/faultmaven/faultmaven/internal/procstat"
)

// peakRSSMiB is this process's peak resident set (VmHWM), in MiB; 0 if
// unknown.
func peakRSSMiB() float64 {
	b, _ := procstat.StatusBytes(0, "VmHWM")
	return float64(b) / (1 << 20)
}

// loadAverage is the one-minute load average, -1 if unknown.
func loadAverage() float64 {
	l, err := procstat.LoadAverage()
	if err != nil {
		return -1
	}
	return l[0]
}

// percentile is the nearest-rank q-quantile of sorted samples, in ms (the
// Node script computes it the same way).
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// writeVectors stores vectors as raw little-endian float32, row after row:
// what the Node script reads with a Float32Array.
func writeVectors(path string, vecs [][]float32) error {
	var buf []byte
	for _, v := range vecs {
		for _, x := range v {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		}
	}
	return os.WriteFile(path, buf, 0o644)
}

// readVectors reads n rows written by writeVectors.
func readVectors(path string, n int) ([][]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if n <= 0 || len(b)%(4*n) != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not %d rows of float32", path, len(b), n)
	}
	dim := len(b) / 4 / n
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, dim)
		for j := range out[i] {
			out[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*(i*dim+j):]))
		}
	}
	return out, nil
}

// busyCores is the machine's busy CPU between two MachineCPU readings, in
// cores.
func busyCores(a, b time.Duration, wall time.Duration) float64 {
	if b < a || wall <= 0 {
		return 0
	}
	return (b - a).Seconds() / wall.Seconds()
}
