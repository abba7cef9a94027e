package evidence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/faultmaven/faultmaven/actors/evidence/loginsight"
)

// analyze fills f's Summary, AnalysisStatus and time range and returns the
// digest and timeline events. Logs and text go through loginsight, streamed
// from the blob; configuration, code and metrics get a line count; images
// and binary files are skipped. A failing analysis is recorded on the file
// ("failed", reason in Summary); only a cancelled ctx or an unreadable blob
// is an error.
func (s *Store) analyze(ctx context.Context, f *File, sn sniffed) (analysis, error) {
	switch f.Kind {
	case KindImage, KindBinary:
		f.AnalysisStatus = AnalysisSkipped
		f.Summary = fmt.Sprintf("%s (%s), %s; not analysed", f.Kind, f.ContentType, humanSize(f.SizeBytes))
		return analysis{}, nil
	case KindConfiguration, KindCode, KindMetrics:
		f.AnalysisStatus = AnalysisCompleted
		what := string(f.Kind)
		if name := formatNames[sn.format]; name != "" {
			what += " (" + name + ")"
		}
		f.Summary = fmt.Sprintf("%s %s of %s", loginsight.Thousands(f.Lines), plural(f.Lines, "line", "lines"), what)
		digest := fmt.Sprintf("%s: %s. Not summarised: read or search the file to inspect it.", f.Filename, f.Summary)
		return analysis{Digest: digest}, nil
	}

	rc, err := s.openBlob(*f)
	if err != nil {
		return analysis{}, err
	}
	defer rc.Close()
	rep, err := s.runInsight(&ctxReader{ctx: ctx, r: rc})
	if ctx.Err() != nil {
		return analysis{}, fmt.Errorf("evidence: analyse %s: %w", f.Filename, ctx.Err())
	}
	if errors.Is(err, loginsight.ErrEmpty) { // blank lines only
		f.AnalysisStatus = AnalysisCompleted
		f.Summary = loginsight.Thousands(f.Lines) + " blank " + plural(f.Lines, "line", "lines")
		return analysis{}, nil
	}
	if err != nil {
		f.AnalysisStatus = AnalysisFailed
		f.Summary = "analysis failed: " + err.Error()
		return analysis{}, nil
	}
	facts := reportFacts(rep)
	f.AnalysisStatus = AnalysisCompleted
	f.FirstTS, f.LastTS = facts.first, facts.last
	f.Summary = summarize(f.Lines, facts)
	an := analysis{Digest: rep.Digest(s.cfg.DigestBudget), Events: facts.events}
	if len(an.Events) > maxEventsPerFile {
		an.Events = an.Events[:maxEventsPerFile]
	}
	return an, nil
}

// logAnalyzer is loginsight.Analyze; tests replace it to fail or panic.
var logAnalyzer = loginsight.Analyze

// formatNames are the display names of sniffed formats.
var formatNames = map[string]string{
	"json": "JSON", "ndjson": "JSON lines", "csv": "CSV", "tsv": "TSV", "prometheus": "Prometheus text", "xml": "XML",
}

// runInsight runs the log analysis. A panic in it (a bug met on hostile
// input) fails this file's analysis instead of the request.
func (s *Store) runInsight(r io.Reader) (rep *loginsight.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("evidence: log analysis panicked", zap.String("panic", cutRunes(fmt.Sprint(p), 200)), zap.Stack("stack"))
			rep, err = nil, fmt.Errorf("internal error in log analysis")
		}
	}()
	rep, err = logAnalyzer(r, loginsight.Options{Reference: s.cfg.Now().UTC()})
	if err == nil && rep == nil {
		err = fmt.Errorf("log analysis returned no report")
	}
	return rep, err
}

// facts are what the file record and the timeline take from a report.
type facts struct {
	first, last *time.Time
	errorRate   float64 // share of lines at error level or worse, 0..1
	templates   int
	events      []event
}

// summarize writes the one-line summary: "2,000 lines, 14:02–14:31,
// 3.2% errors, 27 templates".
func summarize(lines int64, fx facts) string {
	parts := []string{loginsight.Thousands(lines) + " " + plural(lines, "line", "lines")}
	if fx.first != nil && fx.last != nil {
		parts = append(parts, timeRange(*fx.first, *fx.last))
	}
	parts = append(parts, strconv.FormatFloat(fx.errorRate*100, 'f', 1, 64)+"% errors")
	parts = append(parts, strconv.Itoa(fx.templates)+" "+plural(int64(fx.templates), "template", "templates"))
	return strings.Join(parts, ", ")
}

// timeRange shows clock times, with dates when the range spans days.
func timeRange(a, b time.Time) string {
	if a.Year() == b.Year() && a.YearDay() == b.YearDay() {
		return a.Format("15:04") + "–" + b.Format("15:04")
	}
	return a.Format("Jan 2 15:04") + "–" + b.Format("Jan 2 15:04")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
