package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faultmaven/faultmaven/embed/testmodel"
)

// embeddingArgs makes a server embed with the generated test model on ONNX
// Runtime.
func embeddingArgs(t *testing.T) []string {
	t.Helper()
	return []string{"--embed-model-dir", testmodel.TestDir(t), "--embed-backend", "ort", "--ort-lib", testmodel.ORTLib(t)}
}

// searchComponent is /readyz's "search" component.
type searchComponent struct {
	Mode    string `json:"mode"`
	Reason  string `json:"reason"`
	Backend string `json:"backend"`
	Vectors int    `json:"vectors"`
	Chunks  int    `json:"chunks"`
}

func searchStatus(t *testing.T, base string) searchComponent {
	t.Helper()
	var body struct {
		Status     string `json:"status"`
		Components struct {
			Search searchComponent `json:"search"`
		} `json:"components"`
	}
	if code, err := call(base, "GET", "/readyz", "", nil, &body); err != nil || code != http.StatusOK {
		t.Fatalf("readyz: %d %v", code, err)
	}
	return body.Components.Search
}

// waitSearch polls /readyz until cond holds (the model warms up and
// backfills in the background).
func waitSearch(t *testing.T, base string, cond func(searchComponent) bool) searchComponent {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		s := searchStatus(t, base)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("search status never reached the expected state: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSearchSaysWhetherItIsHybrid: without a model the server runs, search
// is lexical, and both /readyz and the log say why once; with the test
// model it is hybrid and every chunk gets a vector.
func TestSearchSaysWhetherItIsHybrid(t *testing.T) {
	srv := startServer(t, t.TempDir())
	st := searchStatus(t, srv.base)
	if st.Mode != "lexical" || !strings.Contains(st.Reason, "faultmaven model pull") {
		t.Fatalf("without a model: %+v, want lexical with the command that fixes it", st)
	}
	if n := strings.Count(srv.logs.String(), "knowledge search is lexical only"); n != 1 {
		t.Fatalf("the log says %d times that search is lexical only, want once:\n%s", n, srv.logs.String())
	}
	tk := register(t, srv.base, "lex-admin")
	if _, err := uploadDoc(srv.base, tk.AccessToken, "pg-failover", "# Postgres failover\n\nPromote the standby.\n"); err != nil {
		t.Fatal(err)
	}
	waitAllReady(t, srv.base, tk.AccessToken, 1)
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	hyb := startServer(t, t.TempDir(), embeddingArgs(t)...)
	tk = register(t, hyb.base, "hyb-admin")
	for i := 0; i < 3; i++ {
		title, _, content := runbookText(i)
		if _, err := uploadDoc(hyb.base, tk.AccessToken, title, content); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, d := range waitAllReady(t, hyb.base, tk.AccessToken, 3) {
		total += d.Chunks
	}
	st = waitSearch(t, hyb.base, func(s searchComponent) bool { return s.Vectors == total })
	if st.Mode != "hybrid" || st.Backend != "ort" || st.Chunks != total {
		t.Fatalf("with the test model: %+v, want hybrid on ort with %d vectors", st, total)
	}
}
