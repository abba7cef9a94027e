package main

import (
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// The profiling listener serves the runtime profiles and the free-memory
// hook, but not the command line (a flag may carry an API key).
func TestPprofListener(t *testing.T) {
	p, err := startPprof("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	base := "http://" + p.addr
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/debug/pprof/"); c != http.StatusOK {
		t.Fatalf("index: %d", c)
	}
	if c := get("/debug/pprof/goroutine?debug=1"); c != http.StatusOK {
		t.Fatalf("goroutine profile: %d", c)
	}
	if c := get("/debug/pprof/cmdline"); c == http.StatusOK {
		t.Fatal("the command line is served")
	}
	resp, err := http.Post(base+"/debug/free-os-memory", "text/plain", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("free-os-memory: %d", resp.StatusCode)
	}
	if c := get("/debug/free-os-memory"); c != http.StatusMethodNotAllowed {
		t.Fatalf("GET free-os-memory: %d, want 405", c)
	}
}
