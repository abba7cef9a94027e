package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs the command until the test ends and returns its base URL.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, io.Discard)
		pw.CloseWithError(io.EOF)
		errc <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/v1/") {
		t.Fatalf("first line %q, want \"listening on http://127.0.0.1:PORT/v1/\"", line)
	}
	return url
}

func client(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func chat(t *testing.T, c *http.Client, url, user string) (int, string) {
	t.Helper()
	body := `{"model":"m","messages":[{"role":"user","content":` + quote(user) + `}]}`
	res, err := c.Post(url+"chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	if len(out.Choices) == 0 {
		return res.StatusCode, ""
	}
	return res.StatusCode, out.Choices[0].Message.Content
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestFakeLLMCommand(t *testing.T) {
	script := filepath.Join(t.TempDir(), "script.json")
	if err := os.WriteFile(script, []byte(`[{"content":"scripted first"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	url := serve(t, "--reply-words", "5", "--script", script, "--forbid", "SECRET, other")
	c := client(t)

	if status, got := chat(t, c, url, "one"); status != 200 || got != "scripted first" {
		t.Fatalf("first reply %d %q, want the script's", status, got)
	}
	if _, got := chat(t, c, url, "two"); len(strings.Fields(got)) != 5 || !strings.HasSuffix(got, ".") {
		t.Fatalf("default reply %q, want a 5-word sentence", got)
	}
	if status, _ := chat(t, c, url, "leak SECRET here"); status != 400 {
		t.Fatalf("forbidden request answered %d, want 400", status)
	}

	base := strings.TrimSuffix(url, "v1/")
	var reqs []llmtest.ChatRequest
	getJSON(t, c, base+"_fake/requests", &reqs)
	if len(reqs) != 3 || reqs[1].LastUser() != "two" {
		t.Fatalf("recorded requests = %+v", reqs)
	}
	var violations []string
	getJSON(t, c, base+"_fake/violations", &violations)
	if len(violations) != 1 || !strings.Contains(violations[0], "SECRET") {
		t.Fatalf("violations = %q", violations)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--reply-words", "0"},
		{"--tps", "-1"},
		{"--script", filepath.Join(t.TempDir(), "missing.json")},
		{"--addr", "not an address"},
		{"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
