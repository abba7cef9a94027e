package embed

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/klippa-app/go-pdfium/webassembly"
)

// makePDF writes a PDF with one page per element of pages, each line of a
// page a line of text. protect, when not "", encrypts it with that user
// password.
func makePDF(t testing.TB, compress bool, protect string, pages ...[]string) []byte {
	t.Helper()
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCompression(compress)
	if protect != "" {
		p.SetProtection(fpdf.CnProtectPrint, protect, "owner-"+protect)
	}
	p.SetFont("Helvetica", "", 12)
	for _, lines := range pages {
		p.AddPage()
		for _, l := range lines {
			p.Cell(0, 8, l)
			p.Ln(8)
		}
	}
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawPDF assembles a PDF from object bodies (object i+1 is objs[i]) with a
// correct cross-reference table and catalog object root.
func rawPDF(root int, objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, root, xref)
	return b.Bytes()
}

// runbookPages is n pages of 40 numbered lines each.
func runbookPages(n int) [][]string {
	lines := make([]string, 40)
	for i := range lines {
		lines[i] = fmt.Sprintf("step %d: check the certificate expiry of ingress-%d with openssl s_client", i, i)
	}
	pages := make([][]string, n)
	for i := range pages {
		pages[i] = lines
	}
	return pages
}

// hostilePDFs are structures that made another pure-Go reader loop
// forever (docs/adr/0010), with what extraction must answer instead.
func hostilePDFs() []struct {
	name string
	pdf  []byte
	want error
	says string
} {
	content := "<< /Length 20 >>\nstream\nBT (hello) Tj ET    \nendstream"
	catalog := "<< /Type /Catalog /Pages 2 0 R >>"
	return []struct {
		name string
		pdf  []byte
		want error
		says string
	}{
		{"cyclic page tree", rawPDF(1, catalog, "<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
			"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>", content), ErrUnsupported, "incorrect page"},
		{"lying page count", rawPDF(1, catalog, "<< /Type /Pages /Kids [3 0 R] /Count 100000000 >>",
			"<< /Type /Page /Parent 2 0 R >>"), ErrEmpty, "no text layer"},
		{"parent cycle", rawPDF(1, catalog, "<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 2 0 R >>",
			"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>", content), ErrEmpty, "no text layer"},
	}
}

func TestExtractPDF(t *testing.T) {
	pages := [][]string{
		{"Disk full on /var/lib/docker", "Run: docker system prune -af"},
		{"Page two: restart the kubelet", "then check df -h"},
	}
	for _, compress := range []bool{false, true} {
		got, err := extract(bytes.NewReader(makePDF(t, compress, "", pages...)), FormatPDF, 1<<20)
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		want := "Disk full on /var/lib/docker\nRun: docker system prune -af\n\nPage two: restart the kubelet\nthen check df -h"
		if got != want {
			t.Errorf("compress=%v: got %q, want %q", compress, got, want)
		}
	}
	// A page without text does not leave an empty paragraph.
	got, err := extract(bytes.NewReader(makePDF(t, true, "", []string{"first"}, nil, []string{"third"})), FormatPDF, 1<<20)
	if err != nil || got != "first\n\nthird" {
		t.Errorf("blank middle page: %q, %v", got, err)
	}
}

func TestExtractPDFRefusesWhatItCannotRead(t *testing.T) {
	cases := append([]struct {
		name string
		pdf  []byte
		want error
		says string
	}{
		{"not a PDF after its header", []byte("%PDF-1.7\nthis is not a pdf at all"), ErrUnsupported, "not a readable PDF"},
		{"password", makePDF(t, true, "s3cret", []string{"hidden runbook"}), ErrUnsupported, "password-protected"},
		{"no text layer", makePDF(t, true, "", nil, nil), ErrEmpty, "no text layer"},
	}, hostilePDFs()...)
	for _, c := range cases {
		_, err := extract(bytes.NewReader(c.pdf), FormatPDF, 1<<20)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: got %v, want %v saying %q", c.name, err, c.want, c.says)
		}
	}
}

func TestExtractPDFLimits(t *testing.T) {
	pdf := makePDF(t, true, "", runbookPages(3)...)
	// The text is capped at twice the file limit like every format's.
	if _, err := extract(bytes.NewReader(pdf), FormatPDF, 1<<10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large text from a small limit: %v", err)
	}
	// The file itself is capped.
	if _, err := extract(bytes.NewReader(pdf), FormatPDF, int64(len(pdf)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("file over the limit: %v", err)
	}
	if _, err := extract(bytes.NewReader(pdf), FormatPDF, 1<<20); err != nil {
		t.Errorf("within the limits: %v", err)
	}
}

// FuzzExtractPDF: whatever the bytes after a PDF header, extraction ends
// with text or a documented error, never a panic or a hang (the test
// binary's timeout is the hang detector).
func FuzzExtractPDF(f *testing.F) {
	f.Add(makePDF(f, false, "", []string{"Disk full on /var", "prune images"}))
	f.Add(makePDF(f, true, "", []string{"Disk full on /var"}, []string{"page two"}))
	for _, h := range hostilePDFs() {
		f.Add(h.pdf)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := extract(bytes.NewReader(body), FormatPDF, 64<<10)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if strings.TrimSpace(out) == "" || len(out) > 3*2*(64<<10) {
			t.Fatalf("%d bytes of text", len(out))
		}
	})
}

func TestExtractPDFIsStoppedAfterItsTimeLimit(t *testing.T) {
	pdf := makePDF(t, true, "", runbookPages(400)...)
	if _, err := extract(bytes.NewReader(pdf), FormatPDF, 64<<20); err != nil {
		t.Fatalf("warm-up: %v", err) // also compiles the engine outside the limit
	}
	old := pdfTimeout
	pdfTimeout = time.Millisecond // 400 pages take far longer
	// More kills than the engine has instances: a killed instance must
	// give its place back.
	for range pdfInstances + 1 {
		_, err := extract(bytes.NewReader(pdf), FormatPDF, 64<<20)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "took longer than 1ms") {
			pdfTimeout = old
			t.Fatalf("over the time limit: %v", err)
		}
	}
	pdfTimeout = old
	// The engine serves the next document.
	got, err := extract(bytes.NewReader(makePDF(t, true, "", []string{"after the kill"})), FormatPDF, 1<<20)
	if err != nil || got != "after the kill" {
		t.Fatalf("after killed extractions: %q, %v", got, err)
	}
}

// BenchmarkExtractPDF: a 50-page runbook of 40 lines a page, compressed,
// through the whole extract path (the engine compiled before the timer).
func BenchmarkExtractPDF(b *testing.B) {
	pages := runbookPages(50)
	pdf := makePDF(b, true, "", pages...)
	if _, err := extract(bytes.NewReader(pdf), FormatPDF, 64<<20); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pdf)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := extract(bytes.NewReader(pdf), FormatPDF, 64<<20); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(pages))*float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

// BenchmarkPDFEngineStart: compiling PDFium's WebAssembly module, which
// the first PDF of a process pays.
func BenchmarkPDFEngineStart(b *testing.B) {
	for b.Loop() {
		pool, err := webassembly.Init(pdfConfig())
		if err != nil {
			b.Fatal(err)
		}
		_ = pool.Close()
	}
}

// TestPDFEngineStartIsRetried: a start that fails fails that document
// only; the next PDF starts the engine again.
func TestPDFEngineStartIsRetried(t *testing.T) {
	pdf := makePDF(t, true, "", []string{"retry the engine"})
	if _, err := extract(bytes.NewReader(pdf), FormatPDF, 1<<20); err != nil {
		t.Fatal(err) // the engine runs
	}
	pdfEngine.mu.Lock()
	running := pdfEngine.pool
	pdfEngine.pool = nil
	pdfEngine.config = func() webassembly.Config {
		c := pdfConfig()
		c.WASM = []byte("\x00asm but not a module")
		return c
	}
	pdfEngine.mu.Unlock()
	t.Cleanup(func() {
		pdfEngine.mu.Lock()
		defer pdfEngine.mu.Unlock()
		if pdfEngine.pool != nil && pdfEngine.pool != running {
			_ = pdfEngine.pool.Close()
		}
		pdfEngine.pool, pdfEngine.config = running, nil
	})

	_, err := extract(bytes.NewReader(pdf), FormatPDF, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "start the PDF engine") {
		t.Fatalf("with an engine that cannot start: %v", err)
	}
	pdfEngine.mu.Lock()
	pdfEngine.config = nil // the cause went away
	pdfEngine.mu.Unlock()
	got, err := extract(bytes.NewReader(pdf), FormatPDF, 1<<20)
	if err != nil || got != "retry the engine" {
		t.Fatalf("the next PDF did not start the engine again: %q, %v", got, err)
	}
}
