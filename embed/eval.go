package embed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// EvalQuery is one line of an evaluation file: a query in a user's words
// and the documents that answer it, named by title or by source file name
// (with or without its extension).
type EvalQuery struct {
	Query    string   `json:"query"`
	Relevant []string `json:"relevant"`
}

// EvalHit is one document a search returned, as the evaluation sees it.
type EvalHit struct {
	Title    string
	Filename string
}

// EvalMiss is a query whose relevant documents were not in the top k.
type EvalMiss struct {
	Query    string
	Relevant []string
	Got      []string // titles of the first k distinct documents
}

// EvalReport is the outcome of Evaluate.
type EvalReport struct {
	K       int
	Queries int
	Recall  float64 // share of queries with a relevant document in the first K distinct documents
	MRR     float64 // mean of 1/rank of the first relevant document (0 when absent)
	Misses  []EvalMiss
}

// ReadEvalQueries parses a JSON-lines evaluation file; blank lines and lines
// starting with "//" are skipped.
func ReadEvalQueries(r io.Reader) ([]EvalQuery, error) {
	var out []EvalQuery
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		var q EvalQuery
		if err := json.Unmarshal([]byte(line), &q); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrInvalidInput, n, err)
		}
		if strings.TrimSpace(q.Query) == "" || len(q.Relevant) == 0 {
			return nil, fmt.Errorf("%w: line %d: query and relevant are required", ErrInvalidInput, n)
		}
		out = append(out, q)
	}
	return out, sc.Err()
}

// Evaluate runs every query through search, which returns distinct
// documents best first, and scores recall@k and MRR (over the same k).
func Evaluate(ctx context.Context, queries []EvalQuery, k int, search func(ctx context.Context, query string, k int) ([]EvalHit, error)) (EvalReport, error) {
	if k <= 0 {
		k = 5
	}
	rep := EvalReport{K: k, Queries: len(queries)}
	if len(queries) == 0 {
		return rep, fmt.Errorf("%w: no queries", ErrInvalidInput)
	}
	var found, rr float64
	for _, q := range queries {
		hits, err := search(ctx, q.Query, k)
		if err != nil {
			return rep, fmt.Errorf("query %q: %w", q.Query, err)
		}
		if len(hits) > k {
			hits = hits[:k]
		}
		rank := 0
		got := make([]string, len(hits))
		for i, h := range hits {
			got[i] = h.Title
			if rank == 0 && relevant(h, q.Relevant) {
				rank = i + 1
			}
		}
		if rank > 0 {
			found++
			rr += 1 / float64(rank)
		} else {
			rep.Misses = append(rep.Misses, EvalMiss{Query: q.Query, Relevant: q.Relevant, Got: got})
		}
	}
	rep.Recall = found / float64(len(queries))
	rep.MRR = rr / float64(len(queries))
	return rep, nil
}

func relevant(h EvalHit, names []string) bool {
	base := filepath.Base(h.Filename)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if strings.EqualFold(n, h.Title) || (h.Filename != "" && (strings.EqualFold(n, base) || strings.EqualFold(n, stem))) {
			return true
		}
	}
	return false
}

// EvalSearch adapts a KB to Evaluate: it searches as viewer and returns the
// first k distinct documents.
func (k *KB) EvalSearch(v Viewer) func(ctx context.Context, query string, n int) ([]EvalHit, error) {
	return func(ctx context.Context, query string, n int) ([]EvalHit, error) {
		res, err := k.Search(ctx, v, SearchQuery{Query: query, Limit: 50})
		if err != nil {
			return nil, err
		}
		var out []EvalHit
		for _, r := range SearchDocuments(res) {
			out = append(out, EvalHit{Title: r.Title, Filename: r.Filename})
			if len(out) == n {
				break
			}
		}
		return out, nil
	}
}
