package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func uploadDoc(base, token, name, content string) (string, error) {
	id, _, err := uploadFile(base, token, name, name+".md", []byte(content), "scope", "global")
	return id, err
}

// uploadFile posts a knowledge-base document (a runbook titled title) with
// the extra form fields given as name, value pairs, and returns its id and
// status.
func uploadFile(base, token, title, filename string, content []byte, fields ...string) (string, string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("title", title)
	_ = mw.WriteField("document_type", "runbook")
	for i := 0; i+1 < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	fw, _ := mw.CreateFormFile("file", filename)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/knowledge/documents", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		return "", "", fmt.Errorf("upload %s: %d %s", filename, resp.StatusCode, data)
	}
	var d struct {
		DocumentID string `json:"document_id"`
		Status     string `json:"status"`
	}
	err = json.Unmarshal(data, &d)
	return d.DocumentID, d.Status, err
}

// runbookText is a document of a few dozen chunks carrying a unique token.
func runbookText(i int) (title, token, content string) {
	token = fmt.Sprintf("zq%04dtoken", i)
	var b strings.Builder
	fmt.Fprintf(&b, "# Runbook %d\n\n", i)
	for s := 0; s < 12; s++ {
		fmt.Fprintf(&b, "## Step %d\n\n", s)
		for p := 0; p < 6; p++ {
			fmt.Fprintf(&b, "Check the worker pool, the queue depth and the consumer lag on shard %d before restarting anything. ", p)
		}
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "## Signature\n\nThe service logs %s when this happens.\n", token)
	return fmt.Sprintf("runbook-%03d", i), token, b.String()
}

type kbDoc struct {
	DocumentID string `json:"document_id"`
	Title      string `json:"title"`
	Status     string `json:"status"`
	Chunks     int    `json:"chunks"`
}

func listDocs(t *testing.T, base, token string) []kbDoc {
	t.Helper()
	var all []kbDoc
	for off := 0; ; off += 100 {
		var page struct {
			Documents []kbDoc `json:"documents"`
		}
		if code, err := call(base, "GET", fmt.Sprintf("/api/v1/knowledge/documents?limit=100&offset=%d", off), token, nil, &page); err != nil || code != 200 {
			t.Fatalf("list: %d %v", code, err)
		}
		all = append(all, page.Documents...)
		if len(page.Documents) < 100 {
			return all
		}
	}
}

// uploadAll uploads n runbooks from 8 clients at once.
func uploadAll(t *testing.T, base, token string, n int) map[string]string {
	t.Helper()
	var mu sync.Mutex
	ids := map[string]string{}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				title, tok, content := runbookText(i)
				id, err := uploadDoc(base, token, title, content)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				ids[id] = tok
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids
}

func waitAllReady(t *testing.T, base, token string, n int) []kbDoc {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		docs := listDocs(t, base, token)
		ready := 0
		for _, d := range docs {
			if d.Status == "failed" {
				t.Fatalf("document %s failed", d.Title)
			}
			if d.Status == "ready" {
				ready++
			}
		}
		if len(docs) != n {
			t.Fatalf("%d documents, %d were acknowledged", len(docs), n)
		}
		if ready == n {
			return docs
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d documents ready", ready, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKill9DuringIngestion uploads 200 documents from 8 clients, kills the
// server with SIGKILL the moment the last one is acknowledged (ingestion
// lags behind), restarts it, and checks that every document becomes ready
// with exactly the chunks an uninterrupted server makes of it, found once.
func TestKill9DuringIngestion(t *testing.T) {
	const n = 200
	// Both servers embed every chunk (the generated test model on ONNX
	// Runtime), so the kill also lands in the middle of embedding.
	emb := embeddingArgs(t)
	// Reference: the same documents on a server that is never killed.
	ref := startServer(t, t.TempDir(), emb...)
	rtk := register(t, ref.base, "kb-ref")
	uploadAll(t, ref.base, rtk.AccessToken, n)
	want := map[string]int{}
	for _, d := range waitAllReady(t, ref.base, rtk.AccessToken, n) {
		want[d.Title] = d.Chunks
	}
	if err := ref.stop(); err != nil {
		t.Fatal(err)
	}

	data := t.TempDir()
	srv := startServer(t, data, emb...)
	tk := register(t, srv.base, "kb-admin") // the first account is admin: global documents
	ids := uploadAll(t, srv.base, tk.AccessToken, n)
	before := listDocs(t, srv.base, tk.AccessToken)
	srv.kill()
	pending := 0
	for _, d := range before {
		if d.Status != "ready" {
			pending++
		}
	}
	t.Logf("killed with %d of %d documents still being ingested", pending, n)

	srv = startServer(t, data, emb...)
	total := 0
	for _, d := range waitAllReady(t, srv.base, tk.AccessToken, n) {
		if _, ok := ids[d.DocumentID]; !ok || d.Chunks != want[d.Title] || d.Chunks < 2 {
			t.Fatalf("%s: %d chunks, an uninterrupted ingestion made %d", d.Title, d.Chunks, want[d.Title])
		}
		total += d.Chunks
	}
	// Every chunk has exactly one vector: none lost, none duplicated.
	st := waitSearch(t, srv.base, func(s searchComponent) bool { return s.Vectors == total })
	if st.Mode != "hybrid" || st.Chunks != total {
		t.Fatalf("search status %+v, want hybrid with %d chunks and vectors", st, total)
	}
	for id, token := range ids {
		var res struct {
			Results []struct {
				DocumentID string `json:"document_id"`
				Metadata   struct {
					ChunkID string `json:"chunk_id"`
				} `json:"metadata"`
			} `json:"results"`
		}
		if code, err := call(srv.base, "POST", "/api/v1/knowledge/search", tk.AccessToken, map[string]any{"query": token, "limit": 10}, &res); err != nil || code != 200 {
			t.Fatalf("search: %d %v", code, err)
		}
		// Hybrid search also lists the nearest vectors; the keyword's
		// document must come first and no chunk may appear twice.
		if len(res.Results) == 0 || res.Results[0].DocumentID != id {
			t.Fatalf("search for %s: %+v, want document %s first", token, res.Results, id)
		}
		seen := map[string]bool{}
		for _, r := range res.Results {
			if r.Metadata.ChunkID == "" || seen[r.Metadata.ChunkID] {
				t.Fatalf("search for %s: chunk id %q missing or listed twice", token, r.Metadata.ChunkID)
			}
			seen[r.Metadata.ChunkID] = true
		}
	}
}
