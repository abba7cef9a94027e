package embed

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/klippa-app/go-pdfium"
	pdferrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// PDF text comes from PDFium, the PDF engine of Chromium, compiled to
// WebAssembly and run inside this process by wazero: no native library
// and no cgo. Each document gets a fresh module instance that sees no
// file system, may grow its memory to pdfMemoryPages and is killed after
// pdfTimeout, so a hostile file costs at most that (docs/adr/0010).

// pdfTimeout bounds one document's extraction, and separately the wait
// for an instance; a clean PDF of a few hundred pages takes well under a
// second. A variable so that a test can shorten it.
var pdfTimeout = 2 * time.Minute

const (
	// pdfMemoryPages is an instance's memory limit in 64 KiB pages (256 MiB).
	pdfMemoryPages = 4096
	// pdfMaxPages bounds the pages read from one document.
	pdfMaxPages = 10_000
	// pdfInstances is how many documents are extracted at once.
	pdfInstances = 2
)

// pdfEngine is the process's PDFium module, compiled at the first PDF
// (about 3 s on a 2-core machine, or loaded from the compilation cache in
// PDFCacheDir) and kept until the process ends. A start that fails (say,
// out of memory while compiling) is tried again by the next PDF rather
// than remembered; config, when set, replaces pdfConfig (tests).
var pdfEngine struct {
	mu       sync.Mutex
	pool     pdfium.Pool
	cacheDir string // where the compiled engine is kept; "" compiles in memory
	config   func() webassembly.Config
}

// setPDFCacheDir sets where the engine, once compiled, is kept for the
// next process. The last call before the engine starts decides; later
// calls have no effect.
func setPDFCacheDir(dir string) {
	pdfEngine.mu.Lock()
	defer pdfEngine.mu.Unlock()
	pdfEngine.cacheDir = dir
}

// pdfPool returns the engine, starting it if it is not running. Callers
// wait for a start in progress.
func pdfPool() (pdfium.Pool, error) {
	pdfEngine.mu.Lock()
	defer pdfEngine.mu.Unlock()
	if pdfEngine.pool != nil {
		return pdfEngine.pool, nil
	}
	cfg := pdfConfig()
	if pdfEngine.config != nil {
		cfg = pdfEngine.config()
	}
	if dir := pdfEngine.cacheDir; dir != "" {
		// A cache that cannot be opened only costs the compilation.
		if cache, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
			cfg.RuntimeConfig = cfg.RuntimeConfig.WithCompilationCache(cache)
		}
	}
	pool, err := webassembly.Init(cfg)
	if err != nil {
		return nil, fmt.Errorf("embed: start the PDF engine: %w", err)
	}
	pdfEngine.pool = pool
	return pool, nil
}

func pdfConfig() webassembly.Config {
	return webassembly.Config{
		MaxTotal: pdfInstances,
		FSConfig: wazero.NewFSConfig(), // no host directory is mounted
		Stdout:   io.Discard,
		Stderr:   io.Discard,
		RuntimeConfig: wazero.NewRuntimeConfig().
			WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
			WithCloseOnContextDone(true). // what makes Kill stop a running call
			WithMemoryLimitPages(pdfMemoryPages),
	}
}

// extractPDF writes the text of every page of the PDF in data, pages
// separated by a blank line.
func extractPDF(data []byte, w *capWriter) error {
	pool, err := pdfPool()
	if err != nil {
		return err
	}
	limit := pdfTimeout
	inst, err := pool.GetInstance(limit)
	if err != nil {
		return fmt.Errorf("embed: PDF engine busy: %w", err)
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		text, err := pdfText(inst, data, w.max-int64(w.b.Len()))
		done <- result{text, err}
	}()
	select {
	case r := <-done:
		_ = inst.Close()
		if r.err != nil {
			return r.err
		}
		return w.WriteString(r.text)
	case <-timer.C:
		// Stops the instance's execution; the goroutine then returns an
		// error nobody reads.
		_ = inst.Kill()
		return fmt.Errorf("%w: reading the PDF took longer than %s", ErrUnsupported, limit)
	}
}

// pdfText reads the pages' text through inst, at most max bytes of it.
func pdfText(inst pdfium.Pdfium, data []byte, max int64) (string, error) {
	doc, err := inst.OpenDocument(&requests.OpenDocument{File: &data})
	if err != nil {
		return "", pdfError(err)
	}
	defer func() { _, _ = inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document}) }()
	n, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return "", pdfError(err)
	}
	var b strings.Builder
	for i := range min(n.PageCount, pdfMaxPages) {
		p, err := inst.GetPageText(&requests.GetPageText{Page: requests.Page{
			ByIndex: &requests.PageByIndex{Document: doc.Document, Index: i},
		}})
		if err != nil {
			return "", fmt.Errorf("page %d: %w", i+1, pdfError(err))
		}
		if t := strings.TrimSpace(p.Text); t != "" {
			if b.Len() > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString(t)
		}
		if int64(b.Len()) > max {
			return "", errOutputTooLarge
		}
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", fmt.Errorf("%w: the PDF has no text layer (a scanned document is images; OCR is not supported)", ErrEmpty)
	}
	return b.String(), nil
}

// pdfError says in words what PDFium's error codes mean.
func pdfError(err error) error {
	switch {
	case errors.Is(err, pdferrors.ErrPassword), errors.Is(err, pdferrors.ErrSecurity):
		return fmt.Errorf("%w: the PDF is password-protected or encrypted: upload an unprotected copy", ErrUnsupported)
	case errors.Is(err, pdferrors.ErrFormat), errors.Is(err, pdferrors.ErrFile), errors.Is(err, pdferrors.ErrPage):
		return fmt.Errorf("%w: the file is not a readable PDF (%v)", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: the PDF could not be read: %v", ErrUnsupported, err)
}
