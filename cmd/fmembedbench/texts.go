package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sugarme/tokenizer"
	"github.com/sugarme/tokenizer/pretrained"

	"github.com/faultmaven/faultmaven/embed/model"
)

// textSet is the texts file every embed step reads: the texts and, for
// the Node script, their token ids.
type textSet struct {
	Source string   `json:"source"` // how the texts were chosen
	Texts  []string `json:"texts"`
	// IDs are each text's token ids as the ort backend feeds them: with
	// [CLS] and [SEP], cut at the attention mask and at the model's limit.
	IDs    [][]int64 `json:"ids"`
	Tokens struct {
		Min  int     `json:"min"`
		P50  int     `json:"p50"`
		Max  int     `json:"max"`
		Mean float64 `json:"mean"`
		// Padded32 is the tokens batches of 32 (in order, each padded to
		// its longest text) run, over the texts' own tokens.
		Padded32 float64 `json:"padded_32"`
	} `json:"tokens"`
	// TokenizeMs is the Go tokenizer's time per text (mean of three
	// passes): the part of the Go timings the Node timings do not have.
	TokenizeMs float64 `json:"tokenize_ms"`
}

func runTexts(args []string, _, stderr io.Writer) error {
	fs := newFlags("texts", stderr)
	dir := fs.String("model", "", "model directory (its tokenizer.json is used)")
	corpus := fs.String("corpus", "testdata/kb/runbooks", "directory of markdown runbooks")
	n := fs.Int("n", 256, "number of texts")
	lo := fs.Int("min-tokens", 50, "shortest text, in tokens with [CLS] and [SEP]")
	hi := fs.Int("max-tokens", 120, "longest text, in tokens")
	out := fs.String("out", "", "texts file to write (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *dir == "" {
		return fmt.Errorf("-model and -out are required")
	}
	if *n < 1 || *lo < 3 || *hi < *lo {
		return fmt.Errorf("want -n ≥ 1 and 3 ≤ -min-tokens ≤ -max-tokens")
	}
	tk, err := newTokenizer(*dir)
	if err != nil {
		return err
	}
	docs, err := readCorpus(*corpus)
	if err != nil {
		return err
	}
	set, err := buildTexts(docs, tk, *n, *lo, *hi)
	if err != nil {
		return err
	}
	start := time.Now()
	for range 3 {
		for _, t := range set.Texts {
			if _, err := tk.ids(t); err != nil {
				return err
			}
		}
	}
	set.TokenizeMs = float64(time.Since(start)) / float64(time.Millisecond) / float64(3*len(set.Texts))
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

// idTokenizer mirrors the ort backend's tokenization (embed/model): the
// same tokenizer.json through the same pure-Go tokenizer, special tokens
// added, ids cut where the attention mask ends (the sentence-transformers
// tokenizer pads to 128) and at the model's limit. The Node comparison
// checks that it matches: different ids would give different vectors.
type idTokenizer struct {
	tk  *tokenizer.Tokenizer
	max int
}

func newTokenizer(dir string) (*idTokenizer, error) {
	f, err := model.Inspect(dir, "")
	if err != nil {
		return nil, err
	}
	tk, err := pretrained.FromFile(f.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", f.Tokenizer, err)
	}
	return &idTokenizer{tk: tk, max: f.MaxTokens}, nil
}

func (t *idTokenizer) ids(text string) ([]int64, error) {
	enc, err := t.tk.EncodeSingle(text, true)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	n := len(enc.Ids)
	if len(enc.AttentionMask) > 0 {
		n = 0
		for i, m := range enc.AttentionMask {
			if m != 0 {
				n = i + 1
			}
		}
	}
	n = min(n, t.max, len(enc.Ids))
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(enc.Ids[i])
	}
	return out, nil
}

// runbook is one corpus file.
type runbook struct {
	name, title, body string
}

// readCorpus reads every .md file of dir, sorted by name.
func readCorpus(dir string) ([]runbook, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .md files in %s", dir)
	}
	slices.Sort(paths)
	docs := make([]runbook, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		d := runbook{name: filepath.Base(p), body: string(b)}
		d.title = strings.TrimSuffix(d.name, ".md")
		for _, line := range strings.Split(d.body, "\n") {
			if t, ok := strings.CutPrefix(line, "# "); ok {
				d.title = strings.TrimSpace(t)
				break
			}
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// buildTexts cuts chunk-like texts out of the runbooks. A candidate starts
// at every body line: the runbook's title, the heading above the line,
// then the line and those after it until the text reaches a target
// length. Targets cycle through lo…hi tokens so that lengths are spread
// over the range; a candidate that cannot land in it is dropped. n
// candidates are then taken at an even stride, so every runbook
// contributes. Deterministic: the same corpus and tokenizer always give
// the same texts.
func buildTexts(docs []runbook, tk *idTokenizer, n, lo, hi int) (*textSet, error) {
	type cand struct {
		text string
		ids  []int64
	}
	var cands []cand
	k := 0
	for _, d := range docs {
		lines := strings.Split(d.body, "\n")
		heading := ""
		for start, line := range lines {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "# ") {
				continue
			}
			if strings.HasPrefix(line, "#") {
				heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
				continue
			}
			target := lo + (k*29)%(hi-lo+1)
			k++
			head := d.title + "\n" + heading + "\n"
			var body []string
			var best cand
			for _, l := range lines[start:] {
				if l = strings.TrimSpace(l); l == "" {
					continue
				}
				body = append(body, l)
				text := head + strings.Join(body, "\n")
				ids, err := tk.ids(text)
				if err != nil {
					return nil, err
				}
				if len(ids) > hi || len(ids) >= tk.max {
					break
				}
				best = cand{text, ids}
				if len(ids) >= target {
					break
				}
			}
			if len(best.ids) >= lo {
				cands = append(cands, best)
			}
		}
	}
	if len(cands) < n {
		return nil, fmt.Errorf("the corpus gives %d texts of %d–%d tokens, want %d", len(cands), lo, hi, n)
	}
	set := &textSet{Source: fmt.Sprintf(
		"%d of %d windows over %d runbooks (title, heading, then body lines up to a target of %d–%d tokens), taken at an even stride",
		n, len(cands), len(docs), lo, hi)}
	lens := make([]int, n)
	total := 0
	for i := 0; i < n; i++ {
		c := cands[i*len(cands)/n]
		set.Texts = append(set.Texts, c.text)
		set.IDs = append(set.IDs, c.ids)
		lens[i] = len(c.ids)
		total += len(c.ids)
	}
	padded := 0
	for s := 0; s < n; s += 32 {
		batch := lens[s:min(n, s+32)]
		padded += len(batch) * slices.Max(batch)
	}
	set.Tokens.Padded32 = float64(padded) / float64(total)
	slices.Sort(lens)
	set.Tokens.Min, set.Tokens.Max, set.Tokens.P50 = lens[0], lens[n-1], lens[(n-1)/2]
	set.Tokens.Mean = float64(total) / float64(n)
	return set, nil
}

// readTexts loads a texts file.
func readTexts(path string) (*textSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set textSet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(set.Texts) == 0 || len(set.Texts) != len(set.IDs) {
		return nil, fmt.Errorf("%s: %d texts and %d id lists", path, len(set.Texts), len(set.IDs))
	}
	return &set, nil
}

// spread picks k of n indices at an even stride (all of them when k ≥ n).
// The Node script uses the same formula, so both sides pick the same texts.
func spread(n, k int) []int {
	if k <= 0 || k > n {
		k = n
	}
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i * n / k
	}
	return idx
}
