package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/faultmaven/faultmaven/actors/agent/llm/llmtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fakellm:", err)
		}
		os.Exit(2)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakellm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (port 0 picks one)")
	ttft := fs.Duration("ttft", 0, "delay before the first chunk of the default reply")
	tps := fs.Float64("tps", 0, "chunks per second of the default reply (0 = as fast as possible)")
	words := fs.Int("reply-words", 12, "words in the default reply")
	chunkChars := fs.Int("chunk-chars", llmtest.DefaultChunkChars, "characters per streamed chunk of the default reply")
	script := fs.String("script", "", "JSON file: an array of replies answered in order before the default")
	forbid := fs.String("forbid", "", "comma-separated texts that must never be sent")
	keep := fs.Int("keep-requests", 10000, "requests kept for /_fake/requests (0 = all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *words < 1:
		return errors.New("--reply-words must be at least 1")
	case *tps < 0 || *ttft < 0 || *chunkChars < 1:
		return errors.New("--tps and --ttft must not be negative, --chunk-chars must be at least 1")
	case *keep < 0:
		return errors.New("--keep-requests must not be negative")
	}
	var replies []llmtest.Reply
	if *script != "" {
		data, err := os.ReadFile(*script)
		if err != nil {
			return fmt.Errorf("--script: %w", err)
		}
		if replies, err = llmtest.ParseScript(data); err != nil {
			return fmt.Errorf("--script %s: %w", *script, err)
		}
	}

	srv, err := llmtest.NewAt(*addr)
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.SetRequestLimit(*keep)
	srv.SetDefault(llmtest.Reply{
		Content:      sentence(*words),
		ChunkChars:   *chunkChars,
		TTFT:         *ttft,
		TokensPerSec: *tps,
	})
	srv.Enqueue(replies...)
	srv.Forbid(splitList(*forbid)...)

	if _, err := fmt.Fprintf(stdout, "listening on %s\n", srv.URL()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// vocabulary makes replies that read like the product's domain.
var vocabulary = strings.Fields(`the service restarted after its memory limit was reached so check
	the pod events the recent deploy and the database connection pool before you roll back`)

// sentence is n words from vocabulary, capitalised and ending in a period.
func sentence(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = vocabulary[i%len(vocabulary)]
	}
	w[0] = strings.ToUpper(w[0][:1]) + w[0][1:]
	return strings.Join(w, " ") + "."
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
