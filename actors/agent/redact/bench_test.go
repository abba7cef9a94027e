package redact

import (
	"strings"
	"testing"
)

// logChunk returns about size bytes of mixed log lines, mostly clean, with
// the positive corpus sprinkled in.
func logChunk(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		for _, n := range negatives {
			b.WriteString(n.in)
			b.WriteByte('\n')
		}
		b.WriteString(positives[i%len(positives)].in)
		b.WriteByte('\n')
	}
	return b.String()[:size]
}

func BenchmarkRedact(b *testing.B) {
	chunk := logChunk(64 << 10)
	// Cut at a rune boundary.
	for len(chunk) > 0 && chunk[len(chunk)-1] >= 0x80 {
		chunk = chunk[:len(chunk)-1]
	}
	p := NewPseudonymizer(testKey, Options{})
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Redact(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDetectClean(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 64<<10 {
		for _, n := range negatives {
			sb.WriteString(n.in + "\n")
		}
	}
	chunk := sb.String()[:64<<10]
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		Detect(chunk)
	}
}
