package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/embed/testmodel"
	"github.com/faultmaven/faultmaven/persistence"
)

func TestKBEvalOnTheCorpus(t *testing.T) {
	out, _, err := runCmd(t, env(nil), "", "kb", "eval", "--corpus", "../../testdata/kb/runbooks",
		"--queries", "../../testdata/kb/queries.jsonl", "--k", "5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "recall@5=") || !strings.Contains(out, "MRR=") {
		t.Fatalf("output:\n%s", out)
	}
	if strings.Contains(out, "recall@5=0.") && !strings.Contains(out, "recall@5=0.9") {
		t.Fatalf("lexical recall@5 below 0.9:\n%s", out)
	}
}

func TestKBIngestIsResumableAndRespectsTheLock(t *testing.T) {
	data := t.TempDir()
	_, errOut, err := runCmd(t, env(nil), "", "kb", "ingest", "--data", data, "../../testdata/kb/runbooks")
	if err != nil {
		t.Fatalf("ingest: %v\n%s", err, errOut)
	}
	out2, errOut2, err := runCmd(t, env(nil), "", "kb", "ingest", "--data", data, "../../testdata/kb/runbooks")
	if err != nil {
		t.Fatal(err)
	}
	if all := out2 + errOut2; !strings.Contains(all, "already") {
		t.Fatalf("a second ingest must report the documents as already present:\n%s", all)
	}
	st, err := persistence.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, _, err = runCmd(t, env(nil), "", "kb", "ingest", "--data", data, "../../testdata/kb/runbooks")
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("locked data dir: %v", err)
	}
}

// TestKBIngestReadsPDFAndKeepsTheCompiledEngine ingests a PDF from the
// command line; the compiled PDF engine is left in the data directory for
// the next run (docs/adr/0010).
func TestKBIngestReadsPDFAndKeepsTheCompiledEngine(t *testing.T) {
	src, data := t.TempDir(), t.TempDir()
	p := fpdf.New("P", "mm", "A4", "")
	p.AddPage()
	p.SetFont("Helvetica", "", 12)
	p.Cell(0, 8, "Rotate the quokkagate certificates before they expire")
	if err := p.OutputFileAndClose(filepath.Join(src, "certs.pdf")); err != nil {
		t.Fatal(err)
	}
	// The first PDF of a process compiles the engine: seconds alone, far
	// more while the rest of the suite shares the cores.
	out, errOut, err := runCmdFor(t, 5*time.Minute, env(nil), "", "kb", "ingest", "--data", data, src)
	if err != nil {
		t.Fatalf("ingest: %v\n%s%s", err, out, errOut)
	}
	entries, err := os.ReadDir(filepath.Join(data, "cache", "pdfium"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no compiled engine kept in the data directory: %v %v", entries, err)
	}
	st, err := persistence.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := st.Keyspace(persistence.SpaceKB)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := embed.Open(ks, ks.Blobs(), embed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := kb.Search(context.Background(), embed.Viewer{UserID: "cli", IsAdmin: true}, embed.SearchQuery{Query: "quokkagate certificates"})
	_ = kb.Close()
	_ = st.Close()
	if err != nil || len(res) == 0 || res[0].Title != "certs" {
		t.Fatalf("search after ingesting the PDF: %+v %v", res, err)
	}
}

// TestKBEvalHybrid scores the corpus with the generated model: the output
// says the search was hybrid. (The model's weights are random, so the
// figure says nothing about quality; docs/benchmarks.md has the numbers.)
func TestKBEvalHybrid(t *testing.T) {
	out, _, err := runCmd(t, env(nil), "", "kb", "eval", "--corpus", "../../testdata/kb/runbooks",
		"--queries", "../../testdata/kb/queries.jsonl", "--k", "5",
		"--embed-model-dir", testmodel.TestDir(t), "--embed-backend", "ort", "--ort-lib", testmodel.ORTLib(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "search=hybrid (model ") || !strings.Contains(out, "backend ort)") || !strings.Contains(out, "recall@5=") {
		t.Fatalf("output:\n%s", out)
	}
	out, _, err = runCmd(t, env(nil), "", "kb", "eval", "--corpus", "../../testdata/kb/runbooks",
		"--queries", "../../testdata/kb/queries.jsonl")
	if err != nil || !strings.Contains(out, "search=lexical") {
		t.Fatalf("lexical run: %v\n%s", err, out)
	}
}

// TestKBIngestAndEvalAgainstAServer runs `faultmaven serve` in this process
// and drives it over HTTP the way the README shows: register, `kb ingest
// --server URL --token T`, a second ingest finding everything present, and
// `kb eval --server` scoring the uploaded corpus. Every document must carry
// the fields the command sent (title, type, scope), which the server reads
// only before the file part.
func TestKBIngestAndEvalAgainstAServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		var out, errb bytes.Buffer
		served <- run(ctx, []string{"serve", "--addr", addr, "--data", t.TempDir(), "--log-level", "error"},
			env(nil), strings.NewReader(""), &out, &errb)
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + addr
	// The first account is the admin; registering it also waits for the
	// server to answer.
	var token string
	for deadline := time.Now().Add(30 * time.Second); token == ""; {
		var err error
		if token, err = registerAt(base, "ops"); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("register: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A second account is no admin: by default its documents are its own;
	// an explicit --scope global is refused with a hint.
	userToken, err := registerAt(base, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := runCmd(t, env(nil), "", "kb", "ingest", "--server", base, "--token", userToken,
		"../../testdata/kb/runbooks/disk-full.md"); err != nil || !strings.Contains(out, "ingested 1 new") || !strings.Contains(errOut, "not an admin") {
		t.Fatalf("a non-admin's default ingest: %v\n%s%s", err, out, errOut)
	}
	_, errOut, err := runCmd(t, env(nil), "", "kb", "ingest", "--server", base, "--token", userToken, "--scope", "global",
		"../../testdata/kb/runbooks/dns-resolution-failures.md")
	if err == nil || !strings.Contains(errOut, "--scope user adds them to your own") {
		t.Fatalf("a non-admin's global ingest: %v\n%s", err, errOut)
	}

	out, errOut, err := runCmd(t, env(nil), "", "kb", "ingest", "--server", base, "--token", token, "../../testdata/kb/runbooks")
	if err != nil || !strings.Contains(out, "ingested 25 new, 0 already present, 0 failed (of 25 files)") {
		t.Fatalf("ingest: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runCmd(t, env(nil), "", "kb", "ingest", "--server", base, "--token", token, "../../testdata/kb/runbooks")
	if err != nil || !strings.Contains(out, "ingested 0 new, 25 already present, 0 failed") {
		t.Fatalf("second ingest: %v\n%s%s", err, out, errOut)
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/knowledge/documents?limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Documents []struct {
			Title        string `json:"title"`
			DocumentType string `json:"document_type"`
			Scope        string `json:"scope"`
			Filename     string `json:"filename"`
		} `json:"documents"`
		Total int `json:"total_count"`
	}
	derr := json.NewDecoder(resp.Body).Decode(&list)
	_ = resp.Body.Close()
	if derr != nil || list.Total != 25 || len(list.Documents) != 25 {
		t.Fatalf("documents: %d listed of %d, %v", len(list.Documents), list.Total, derr)
	}
	for _, d := range list.Documents {
		if d.DocumentType != "runbook" || d.Scope != "global" || d.Title == "" || d.Title == d.Filename {
			t.Fatalf("the command's fields were not applied: %+v", d)
		}
	}

	out, errOut, err = runCmd(t, env(nil), "", "kb", "eval", "--server", base, "--token", token,
		"--queries", "../../testdata/kb/queries.jsonl", "--k", "5")
	if err != nil || !strings.Contains(out, "recall@5=") {
		t.Fatalf("eval: %v\n%s%s", err, out, errOut)
	}
	if strings.Contains(out, "recall@5=0.") && !strings.Contains(out, "recall@5=0.9") {
		t.Fatalf("recall@5 over the server below 0.9:\n%s", out)
	}
}

// TestKBIngestNamesWhatItSkips: files of types the knowledge base does not
// read and symbolic links (never followed) are listed, not passed over in
// silence; hidden directories stay out.
func TestKBIngestNamesWhatItSkips(t *testing.T) {
	src, data := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{
		"runbook.md": "# Disk full\n\nClean /var/log.\n", "shot.png": "\x89PNG\r\n\x1a\n", "dump.bin": "\x00\x01",
		".git/config": "[core]\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "link.txt")); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCmd(t, env(nil), "", "kb", "ingest", "--data", data, src)
	if err != nil || !strings.Contains(out, "ingested 1 new, 0 already present, 0 failed (of 1 files)") {
		t.Fatalf("ingest: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "skipping 3 files") {
		t.Fatalf("the skipped files are not reported:\n%s", errOut)
	}
	for _, name := range []string{"shot.png", "dump.bin", "link.txt"} {
		if !strings.Contains(errOut, name) {
			t.Errorf("%s not named among the skipped files:\n%s", name, errOut)
		}
	}
	if strings.Contains(errOut, ".git") {
		t.Errorf("hidden directories must stay out of the report:\n%s", errOut)
	}
}

// registerAt registers username on the server at base and returns its
// access token.
func registerAt(base, username string) (string, error) {
	resp, err := http.Post(base+"/api/v1/auth/register", "application/json",
		strings.NewReader(`{"username":"`+username+`","password":"a-long-password-1","email":"`+username+`@example.com"}`))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusCreated || tok.AccessToken == "" {
		return "", fmt.Errorf("register %s: HTTP %d %v", username, resp.StatusCode, err)
	}
	return tok.AccessToken, nil
}
