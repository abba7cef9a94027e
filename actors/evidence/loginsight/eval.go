package loginsight

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// GroupingAccuracy is the loghub metric (Zhu et al., ICSE-SEIP 2019): the
// share of lines whose predicted group holds exactly the same set of lines
// as their ground-truth group. predicted and truth are per-line labels;
// lines with equal labels form a group, so predicting a template string per
// line merges clusters that end in the same template, as the published
// scores do. Mismatched lengths or no lines give 0.
func GroupingAccuracy(predicted, truth []string) float64 {
	if len(predicted) != len(truth) || len(truth) == 0 {
		return 0
	}
	correct := 0
	for _, g := range groupings(predicted, truth) {
		if g.exact {
			correct += g.lines
		}
	}
	return float64(correct) / float64(len(truth))
}

type truthGroup struct {
	label string
	lines int
	// split: predicted label → lines of this truth group that got it
	split map[string]int
	exact bool
}

func groupings(predicted, truth []string) []*truthGroup {
	predSize := map[string]int{}
	byTruth := map[string]*truthGroup{}
	var order []*truthGroup
	for i, t := range truth {
		predSize[predicted[i]]++
		g := byTruth[t]
		if g == nil {
			g = &truthGroup{label: t, split: map[string]int{}}
			byTruth[t] = g
			order = append(order, g)
		}
		g.lines++
		g.split[predicted[i]]++
	}
	for _, g := range order {
		if len(g.split) == 1 {
			for p, n := range g.split {
				g.exact = predSize[p] == n
			}
		}
	}
	return order
}

// Misgrouping describes a ground-truth group the prediction got wrong:
// its lines were split over several predicted groups, or their predicted
// group also holds lines of other truth groups.
type Misgrouping struct {
	Truth     string
	Lines     int
	Predicted []PredictedShare
}

// PredictedShare is one predicted group a truth group's lines went to.
type PredictedShare struct {
	Label string
	Lines int // lines of the truth group with this label
	Size  int // all lines with this label
}

// Misgroupings lists the wrongly grouped truth groups, largest first.
func Misgroupings(predicted, truth []string) []Misgrouping {
	if len(predicted) != len(truth) {
		return nil
	}
	predSize := map[string]int{}
	for _, p := range predicted {
		predSize[p]++
	}
	var out []Misgrouping
	for _, g := range groupings(predicted, truth) {
		if g.exact {
			continue
		}
		mg := Misgrouping{Truth: g.label, Lines: g.lines}
		for p, n := range g.split {
			mg.Predicted = append(mg.Predicted, PredictedShare{Label: p, Lines: n, Size: predSize[p]})
		}
		slices.SortFunc(mg.Predicted, func(a, b PredictedShare) int {
			if c := cmp.Compare(b.Lines, a.Lines); c != 0 {
				return c
			}
			return strings.Compare(a.Label, b.Label)
		})
		out = append(out, mg)
	}
	slices.SortFunc(out, func(a, b Misgrouping) int {
		if c := cmp.Compare(b.Lines, a.Lines); c != 0 {
			return c
		}
		return strings.Compare(a.Truth, b.Truth)
	})
	return out
}

// EvalResult is the outcome of EvaluateCSV.
type EvalResult struct {
	Lines    int
	Accuracy float64
	// Found counts the distinct predicted templates, Expected the distinct
	// ground-truth EventIds.
	Found, Expected int
	Misgroupings    []Misgrouping
	// TruthTemplates maps EventId to EventTemplate when the file has one.
	TruthTemplates map[string]string
}

// ErrNoColumn is returned by EvaluateCSV for a file without the Content or
// EventId column.
var ErrNoColumn = errors.New("loginsight: missing column")

// EvaluateCSV mines the Content column of a loghub *_structured.csv file
// (header LineId,…,Content,EventId,EventTemplate) with one Miner and scores
// the grouping against EventId. Each line is labelled with the template of
// its final cluster.
func EvaluateCSV(r io.Reader, cfg MinerConfig) (*EvalResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, fmt.Errorf("loginsight: read csv header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	ci, okC := col["Content"]
	ei, okE := col["EventId"]
	ti, okT := col["EventTemplate"]
	switch {
	case !okC && !okE:
		return nil, fmt.Errorf("%w: no Content and no EventId column in header %q", ErrNoColumn, strings.Join(header, ","))
	case !okC:
		return nil, fmt.Errorf("%w: no Content column", ErrNoColumn)
	case !okE:
		return nil, fmt.Errorf("%w: no EventId column", ErrNoColumn)
	}
	m := NewMiner(cfg)
	var (
		contents, truth []string
		ids             []int
		tmpls           = map[string]string{}
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("loginsight: read csv: %w", err)
		}
		if ci >= len(rec) || ei >= len(rec) {
			line, _ := cr.FieldPos(0)
			return nil, fmt.Errorf("loginsight: csv line %d has %d fields, want Content (%d) and EventId (%d)", line, len(rec), ci+1, ei+1)
		}
		c := rec[ci]
		contents = append(contents, c)
		truth = append(truth, rec[ei])
		ids = append(ids, m.Add(c))
		if okT && ti < len(rec) {
			if _, seen := tmpls[rec[ei]]; !seen {
				tmpls[rec[ei]] = rec[ti]
			}
		}
	}
	if len(contents) == 0 {
		return nil, ErrEmpty
	}
	pred := make([]string, len(contents))
	found, expected := map[string]bool{}, map[string]bool{}
	for i, c := range contents {
		pred[i] = m.TemplateOf(ids[i], c)
		found[pred[i]] = true
		expected[truth[i]] = true
	}
	res := &EvalResult{
		Lines:        len(contents),
		Accuracy:     GroupingAccuracy(pred, truth),
		Found:        len(found),
		Expected:     len(expected),
		Misgroupings: Misgroupings(pred, truth),
	}
	if okT {
		res.TruthTemplates = tmpls
	}
	return res, nil
}
