package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"
)

// uploadPDF posts a one-page PDF carrying line as a private document.
func uploadPDF(t *testing.T, base, token, name, line string) string {
	t.Helper()
	p := fpdf.New("P", "mm", "A4", "")
	p.AddPage()
	p.SetFont("Helvetica", "", 12)
	p.Cell(0, 8, line)
	var pdf bytes.Buffer
	if err := p.Output(&pdf); err != nil {
		t.Fatal(err)
	}
	id, status, err := uploadFile(base, token, name, name+".pdf", pdf.Bytes())
	if err != nil || status != "processing" {
		t.Fatalf("upload %s: %q %v", name, status, err)
	}
	return id
}

// waitDocReady polls the document until it is ready. The first PDF on a
// data directory compiles the PDF engine: seconds alone, longer while
// other test processes share the cores.
func waitDocReady(t *testing.T, base, token, id string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var d kbDoc
		if code, err := call(base, "GET", "/api/v1/knowledge/documents/"+id, token, nil, &d); err != nil || code != 200 {
			t.Fatalf("get %s: %d %v", id, code, err)
		}
		switch {
		case d.Status == "ready" && d.Chunks > 0:
			return
		case d.Status == "failed" || time.Now().After(deadline):
			t.Fatalf("document %s: %+v", id, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func searchFinds(t *testing.T, base, token, query, id string) bool {
	t.Helper()
	var res struct {
		Results []struct {
			DocumentID string `json:"document_id"`
		} `json:"results"`
	}
	if code, err := call(base, "POST", "/api/v1/knowledge/search", token, map[string]any{"query": query, "limit": 5}, &res); err != nil || code != 200 {
		t.Fatalf("search %q: %d %v", query, code, err)
	}
	for _, r := range res.Results {
		if r.DocumentID == id {
			return true
		}
	}
	return false
}

// TestPDFThroughTheServer uploads PDFs over REST to the real binary: each
// becomes ready and searchable, the compiled PDF engine is kept in the
// data directory, and a restarted server reads the next PDF with it.
func TestPDFThroughTheServer(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	alice := register(t, srv.base, "alice")
	id := uploadPDF(t, srv.base, alice.AccessToken, "wombat-certs", "Rotate the wombatgate TLS certificates every 90 days")
	waitDocReady(t, srv.base, alice.AccessToken, id)
	if !searchFinds(t, srv.base, alice.AccessToken, "wombatgate certificates", id) {
		t.Fatal("search does not find the PDF's text")
	}
	bob := register(t, srv.base, "bob")
	if searchFinds(t, srv.base, bob.AccessToken, "wombatgate certificates", id) {
		t.Fatal("another user finds alice's private PDF")
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	cache, err := os.ReadDir(filepath.Join(data, "cache", "pdfium"))
	if err != nil || len(cache) == 0 {
		t.Fatalf("compiled PDF engine not kept: %v %v", cache, err)
	}

	srv = startServer(t, data)
	var login tokens
	if code, err := call(srv.base, "POST", "/api/v1/auth/login", "", map[string]any{"username": "alice", "password": "correct horse battery"}, &login); err != nil || code != 200 {
		t.Fatalf("login after restart: %d %v", code, err)
	}
	id2 := uploadPDF(t, srv.base, login.AccessToken, "numbat-dns", fmt.Sprintf("Flush the numbatdns cache (run %d)", 2))
	waitDocReady(t, srv.base, login.AccessToken, id2)
	if !searchFinds(t, srv.base, login.AccessToken, "numbatdns cache", id2) || !searchFinds(t, srv.base, login.AccessToken, "wombatgate", id) {
		t.Fatal("after a restart, search misses a PDF")
	}
}
