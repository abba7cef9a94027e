package embed

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalCorpus ingests testdata/kb/runbooks and scores the hand-written
// symptom queries. The bar is recall@5 ≥ 0.9 with lexical search alone.
func TestEvalCorpus(t *testing.T) {
	e := newEnv(t, Config{})
	root := filepath.Join("..", "testdata", "kb")
	files, err := filepath.Glob(filepath.Join(root, "runbooks", "*.md"))
	if err != nil || len(files) < 20 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e.upload(Upload{Owner: "cli", Admin: true, Scope: ScopeGlobal, Filename: filepath.Base(f),
			Title: TitleFor(f, body), DocumentType: "runbook"}, string(body))
	}
	e.wait()
	qf, err := os.Open(filepath.Join(root, "queries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer qf.Close()
	queries, err := ReadEvalQueries(qf)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Evaluate(context.Background(), queries, 5, e.kb.EvalSearch(Viewer{UserID: "eval"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("queries=%d recall@5=%.4f MRR=%.4f", rep.Queries, rep.Recall, rep.MRR)
	for _, m := range rep.Misses {
		t.Logf("miss: %q want %v got %s", m.Query, m.Relevant, strings.Join(m.Got, " | "))
	}
	if rep.Recall < 0.9 {
		t.Errorf("recall@5 = %.4f, want ≥ 0.9", rep.Recall)
	}
}

func TestEvaluateScoring(t *testing.T) {
	qs := []EvalQuery{{Query: "a", Relevant: []string{"x.md"}}, {Query: "b", Relevant: []string{"Title Y"}}, {Query: "c", Relevant: []string{"z"}}}
	search := func(_ context.Context, q string, k int) ([]EvalHit, error) {
		switch q {
		case "a":
			return []EvalHit{{Title: "other"}, {Title: "X", Filename: "x.md"}}, nil
		case "b":
			return []EvalHit{{Title: "title y"}}, nil
		}
		return []EvalHit{{Title: "nope", Filename: "z2.md"}}, nil
	}
	rep, err := Evaluate(context.Background(), qs, 5, search)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recall != 2.0/3 || rep.MRR != (0.5+1)/3 || len(rep.Misses) != 1 {
		t.Errorf("%+v", rep)
	}
}
