package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// envName maps a flag name to its environment variable: case-idle → FM_CASE_IDLE.
func envName(flagName string) string {
	return "FM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command line
// from its FM_ environment variable. A bad value names the setting.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, out io.Writer) error {
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage of faultmaven %s:\n", fs.Name())
		fs.VisitAll(func(f *flag.Flag) {
			def := f.DefValue
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(out, "  --%s (env %s, default %s)\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	return fillFromEnv(fs, getenv)
}

// fillFromEnv sets every flag of fs not given on the command line from its
// FM_ environment variable. A bad value names the setting.
func fillFromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("invalid %s=%q: %v", envName(f.Name), v, err))
		}
	})
	return errors.Join(errs...)
}

// listFlag is a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = nil
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
