// Command faultmaven is the FaultMaven server and its operator tools, in one
// binary: `faultmaven serve`, `faultmaven user add`, `faultmaven version`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=..."
// (make build); otherwise taken from what the Go toolchain recorded in the
// binary (see init).
var (
	version = "dev"
	commit  = "unknown"
)

func init() { version, commit = buildVersion(version, commit, readBuildInfo()) }

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// buildVersion fills what -ldflags left at its default from the build
// information: the module version of a `go install …@v1.2.3`, the VCS
// revision (marked "-dirty" for a modified tree) of a plain `go build` in a
// clone. Values set by -ldflags win.
func buildVersion(v, c string, bi *debug.BuildInfo) (string, string) {
	if bi == nil {
		return v, c
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if c == "unknown" {
		var rev string
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 7 {
			rev = rev[:7]
		}
		if rev != "" {
			c = rev
			if dirty {
				c += "-dirty"
			}
		}
	}
	return v, c
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, errHelpShown) {
		fmt.Fprintln(os.Stderr, "faultmaven:", err)
		os.Exit(1)
	}
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one
// exits at once, so a stuck shutdown can always be forced.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		fmt.Fprintln(os.Stderr, "faultmaven: second signal, exiting without a clean shutdown")
		os.Exit(2)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

var errHelpShown = errors.New("help shown")

const usage = `faultmaven — self-hosted AI troubleshooting copilot

Usage:
  faultmaven serve [flags]          run the server (see 'faultmaven serve --help')
  faultmaven user add [flags]       create a user in a data directory no server is using
  faultmaven version                print the version
  faultmaven logs analyze|eval      summarise a log file offline / score the template miner ('faultmaven logs help')
  faultmaven kb ingest|eval         add documents to the knowledge base / score its search ('faultmaven kb help')
  faultmaven model pull|check       download the embedding model / check the one the server would use ('faultmaven model help')

Every flag can also be set with an FM_ environment variable (flag --case-idle is
FM_CASE_IDLE); a flag on the command line wins over the environment.
`

// run is the whole program; main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], getenv, stdout, stderr)
	case "user":
		return runUser(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "logs":
		return runLogs(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "model":
		return runModel(ctx, args[1:], getenv, stdout, stderr)
	case "kb":
		return runKB(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "faultmaven %s (commit %s)\n", version, commit)
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
