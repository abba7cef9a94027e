package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/faultmaven/faultmaven/actors/evidence/loginsight"
)

const logsUsage = `Usage:
  faultmaven logs analyze [--budget 8000] [--json] <file|->
      Summarise a log offline (no server, no data directory): print the
      digest the assistant would get, or with --json the whole report.
  faultmaven logs eval [--show 20] <Name>_2k.log_structured.csv
      Score the template miner on a loghub structured CSV (columns Content
      and EventId): grouping accuracy, templates found vs expected, and the
      largest mis-groupings.
`

// runLogs is the offline log tooling; it never opens a data directory.
func runLogs(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, logsUsage)
		return errors.New("missing logs command (analyze or eval)")
	}
	switch args[0] {
	case "analyze":
		return runLogsAnalyze(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "eval":
		return runLogsEval(ctx, args[1:], getenv, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, logsUsage)
		return nil
	default:
		fmt.Fprint(stderr, logsUsage)
		return fmt.Errorf("unknown logs command %q (want analyze or eval)", args[0])
	}
}

func runLogsAnalyze(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs analyze", flag.ContinueOnError)
	budget := fs.Int("budget", loginsight.DefaultDigestBudget, "digest size limit in characters")
	asJSON := fs.Bool("json", false, "print the whole report as JSON instead of the digest")
	path, err := parseFileArgs(fs, args, getenv, stderr)
	if err != nil {
		return err
	}
	if *budget < 100 {
		return fmt.Errorf("--budget %d is too small: give at least 100 characters", *budget)
	}
	in, ref, closeIn, err := openInput(path, stdin)
	if err != nil {
		return err
	}
	defer closeIn()
	rep, err := loginsight.Analyze(ctxReader{ctx, in}, loginsight.Options{Reference: ref})
	switch {
	case errors.Is(err, loginsight.ErrBinary):
		return fmt.Errorf("%s does not look like a text log (binary content)", path)
	case errors.Is(err, loginsight.ErrEmpty):
		return fmt.Errorf("%s has no log lines (it is empty or blank)", path)
	case err != nil:
		return fmt.Errorf("analyze %s: %w", path, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, rep.Digest(*budget))
	}
	fmt.Fprintf(stderr, "analyzed %d lines (%d bytes) in %s: %.0f lines/s\n",
		rep.Lines, rep.Bytes, rep.Elapsed.Round(time.Millisecond), rep.LinesPerSec)
	return nil
}

func runLogsEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs eval", flag.ContinueOnError)
	show := fs.Int("show", 20, "how many mis-grouped templates to list")
	// For experiments only; the defaults are the one general configuration.
	var cfg loginsight.MinerConfig
	fs.Float64Var(&cfg.Similarity, "similarity", 0, "miner similarity threshold (experiments; 0 = default 0.5)")
	fs.IntVar(&cfg.Depth, "depth", 0, "miner tree depth (experiments; 0 = default 4)")
	fs.IntVar(&cfg.EnumValues, "enum-values", 0, "words a generalised position may hold and still split (experiments; 0 = default 4, -1 = off)")
	path, err := parseFileArgs(fs, args, getenv, stderr)
	if err != nil {
		return err
	}
	if *show < 0 {
		return fmt.Errorf("--show must not be negative (got %d)", *show)
	}
	in, _, closeIn, err := openInput(path, nil)
	if err != nil {
		return err
	}
	defer closeIn()
	br := bufio.NewReader(ctxReader{ctx, in})
	if peek, _ := br.Peek(4096); loginsight.LooksBinary(peek) {
		return fmt.Errorf("%s does not look like a CSV file (binary content)", path)
	}
	res, err := loginsight.EvaluateCSV(br, cfg)
	switch {
	case errors.Is(err, loginsight.ErrNoColumn):
		return fmt.Errorf("%s: %w; want a loghub *_structured.csv with Content and EventId columns", path, err)
	case errors.Is(err, loginsight.ErrEmpty):
		return fmt.Errorf("%s has no data rows", path)
	case err != nil:
		return fmt.Errorf("eval %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "grouping accuracy=%.4f\n", res.Accuracy)
	fmt.Fprintf(stdout, "templates found=%d expected=%d\n", res.Found, res.Expected)
	fmt.Fprintf(stdout, "lines=%d mis-grouped templates=%d\n", res.Lines, len(res.Misgroupings))
	if len(res.Misgroupings) > 0 && *show > 0 {
		fmt.Fprintln(stdout, "largest mis-groupings (truth → predicted groups):")
	}
	for i, mg := range res.Misgroupings {
		if i >= *show {
			fmt.Fprintf(stdout, "  … %d more\n", len(res.Misgroupings)-i)
			break
		}
		label := mg.Truth
		if t := res.TruthTemplates[mg.Truth]; t != "" {
			label += " " + quote(t)
		}
		fmt.Fprintf(stdout, "  %s: %d lines\n", label, mg.Lines)
		for j, p := range mg.Predicted {
			if j >= 5 {
				fmt.Fprintf(stdout, "      … %d more predicted groups\n", len(mg.Predicted)-j)
				break
			}
			extra := ""
			if p.Size > p.Lines {
				extra = fmt.Sprintf(" (shared: that group has %d lines)", p.Size)
			}
			fmt.Fprintf(stdout, "      %d → %s%s\n", p.Lines, quote(p.Label), extra)
		}
	}
	return nil
}

// parseFileArgs parses flags given before or after the one file argument;
// flags not given come from their FM_ variables (FM_BUDGET, FM_JSON, ...).
func parseFileArgs(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) (string, error) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, logsUsage)
		fmt.Fprintf(stderr, "\nFlags of faultmaven %s:\n", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(stderr, "  --%s (env %s, default %s)\n      %s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
		})
	}
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", errHelpShown
			}
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := fillFromEnv(fs, getenv); err != nil {
		return "", err
	}
	switch len(files) {
	case 0:
		return "", fmt.Errorf("%s: missing file argument", fs.Name())
	case 1:
		return files[0], nil
	}
	return "", fmt.Errorf("%s: want one file, got %d (%s)", fs.Name(), len(files), strings.Join(files, ", "))
}

// openInput opens a regular file (or "-" for stdin when stdin is given)
// and returns the time to date year-less timestamps by: the file's
// modification time, else now.
func openInput(path string, stdin io.Reader) (io.Reader, time.Time, func(), error) {
	if path == "-" && stdin != nil {
		return stdin, time.Now().UTC(), func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, time.Time{}, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, time.Time{}, nil, fmt.Errorf("%s is a directory, not a file", path)
	}
	if st.Mode().IsRegular() && st.Size() == 0 {
		f.Close()
		return nil, time.Time{}, nil, fmt.Errorf("%s is empty", path)
	}
	return f, st.ModTime().UTC(), func() { f.Close() }, nil
}

// ctxReader stops a long read when the command is interrupted.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// quote prints s quoted, cut to 160 bytes on a rune boundary.
func quote(s string) string {
	n := 160
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return fmt.Sprintf("%q", s)
}
