package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fmembedbench:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: fmembedbench <command> [flags]

commands:
  all     every step below in its own process, -runs times, then the report
  texts   cut and tokenize the benchmark texts
  embed   one Go backend on the texts
  ingest  upload a corpus into a fresh knowledge base
  report  the table from the JSON results

"fmembedbench <command> -h" lists a command's flags.`

// run dispatches to a command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "all":
		err = runAll(ctx, rest, stdout, stderr)
	case "texts":
		err = runTexts(rest, stdout, stderr)
	case "embed":
		err = runEmbed(ctx, rest, stdout, stderr)
	case "ingest":
		err = runIngest(ctx, rest, stdout, stderr)
	case "report":
		err = runReport(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return err
}

// newFlags is a command's flag set; errors are returned, not fatal.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fmembedbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
