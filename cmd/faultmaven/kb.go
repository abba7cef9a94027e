package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/embed/model"
	"github.com/faultmaven/faultmaven/persistence"
)

const kbUsage = `Usage:
  faultmaven kb ingest [--data DIR | --server URL --token T] [--scope global|user] [--document-type runbook] <dir|file>...
  faultmaven kb eval --queries q.jsonl [--k 5] [--data DIR | --server URL --token T | --corpus DIR]

ingest walks directories (hidden files and folders are skipped), uploads every
supported file (md, txt, html, json, yaml, csv, log) and skips files already
ingested. With --data it writes to a data directory no server is using, as
admin "cli"; with --server it uses the HTTP API.

eval runs each query of a JSON-lines file ({"query": "...", "relevant": ["title or file name"]})
and prints recall@k and MRR over the first k distinct documents. With --corpus
and neither --data nor --server, the corpus is ingested into a temporary store first.
`

func runKB(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stdout, kbUsage)
		if len(args) == 0 {
			return errors.New("missing kb command (ingest or eval)")
		}
		return nil
	}
	switch args[0] {
	case "ingest":
		return runKBIngest(ctx, args[1:], getenv, stdout, stderr)
	case "eval":
		return runKBEval(ctx, args[1:], getenv, stdout, stderr)
	default:
		fmt.Fprint(stderr, kbUsage)
		return fmt.Errorf("unknown kb command %q (ingest or eval)", args[0])
	}
}

// splitArgs separates positional arguments from flags, so that paths may
// come before or after the flags. Every kb flag takes a value.
func splitArgs(args []string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(positional, args[i+1:]...)
		case a == "-h" || a == "--help" || a == "-help":
			flags = append(flags, a)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	return flags, positional
}

// kbTarget is where the CLI sends documents and queries: a local KB or a
// server.
type kbTarget interface {
	upload(ctx context.Context, path string, body []byte, title, docType string, scope embed.Scope) (duplicate bool, err error)
	search(ctx context.Context, query string, k int) ([]embed.EvalHit, error)
	finish(ctx context.Context) error // wait for pending ingestion
	close() error
}

type kbFlags struct {
	data, server, token string
	embedDir, backend   string
	ortLib              string
}

func (f *kbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.data, "data", "", "data directory to write to directly (no server may be running on it)")
	fs.StringVar(&f.server, "server", "", "server base URL, e.g. http://127.0.0.1:8090")
	fs.StringVar(&f.token, "token", "", "bearer token for --server")
	fs.StringVar(&f.embedDir, "embed-model-dir", "", "embedding model directory for hybrid search without --server (default: the model pulled into <data>/models, if any)")
	fs.StringVar(&f.backend, "embed-backend", "auto", "embedding backend without --server: auto, hugot or ort")
	fs.StringVar(&f.ortLib, "ort-lib", "", "libonnxruntime.so for the ort backend")
}

// openModel opens the embedding model a local knowledge base uses: the
// explicit directory, else the default model pulled into dataDir (if any).
// A nil model means lexical search.
func (f *kbFlags) openModel(dataDir string) (*model.Model, error) {
	dir := f.embedDir
	if dir == "" && dataDir != "" {
		var err error
		if dir, err = model.Locate("", filepath.Join(dataDir, "models"), model.DefaultRepo); err != nil {
			return nil, err
		}
	}
	if dir == "" {
		return nil, nil
	}
	backend, err := model.ParseBackend(f.backend)
	if err != nil {
		return nil, err
	}
	m, err := model.Open(model.Config{Dir: dir, Backend: backend, ORTLib: f.ortLib})
	if err != nil {
		return nil, err
	}
	if err := m.Warm(context.Background()); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

func (f *kbFlags) open() (kbTarget, error) {
	switch {
	case f.data != "" && f.server != "":
		return nil, errors.New("give either --data or --server, not both")
	case f.server != "":
		if f.token == "" {
			return nil, errors.New("--server needs --token (or FM_TOKEN)")
		}
		return &remoteKB{base: strings.TrimRight(f.server, "/"), token: f.token, client: &http.Client{Timeout: 60 * time.Second}}, nil
	case f.data != "":
		m, err := f.openModel(f.data)
		if err != nil {
			return nil, err
		}
		return openLocalKB(f.data, m)
	}
	return nil, errors.New("give --data DIR or --server URL --token T")
}

type localKB struct {
	store *persistence.Store
	kb    *embed.KB
	model *model.Model // nil: lexical only
	tmp   string
}

// openLocalKB opens the knowledge base of a data directory; with m it
// embeds and searches hybrid, and owns m from then on.
func openLocalKB(dir string, m *model.Model) (_ *localKB, err error) {
	defer func() {
		if err != nil && m != nil {
			_ = m.Close()
		}
	}()
	store, err := persistence.Open(dir, nil)
	if err != nil {
		if errors.Is(err, persistence.ErrLocked) {
			return nil, fmt.Errorf("data directory %s is in use by a running server: use --server URL --token T", dir)
		}
		return nil, err
	}
	ks, err := store.Keyspace(persistence.SpaceKB)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	cfg := embed.Config{PDFCacheDir: filepath.Join(dir, "cache", "pdfium")}
	if m != nil {
		cfg.Embedder, cfg.ModelID, cfg.IndexDir = m, m.Info().ID, filepath.Join(dir, "index")
	}
	kb, err := embed.Open(ks, ks.Blobs(), cfg)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	return &localKB{store: store, kb: kb, model: m}, nil
}

// mode describes the search a local knowledge base runs.
func (l *localKB) mode() string {
	if l.model == nil {
		return "lexical"
	}
	i := l.model.Info()
	return fmt.Sprintf("hybrid (model %s, backend %s)", i.ID, i.Backend)
}

func (l *localKB) upload(ctx context.Context, path string, body []byte, title, docType string, scope embed.Scope) (bool, error) {
	_, dup, err := l.kb.Upload(ctx, embed.Upload{Owner: "cli", Admin: true, Scope: scope, Title: title,
		DocumentType: docType, Filename: filepath.Base(path), Body: bytes.NewReader(body)})
	return dup, err
}

func (l *localKB) search(ctx context.Context, query string, k int) ([]embed.EvalHit, error) {
	return l.kb.EvalSearch(embed.Viewer{UserID: "cli", IsAdmin: true})(ctx, query, k)
}

func (l *localKB) finish(ctx context.Context) error { return l.kb.WaitIdle(ctx) }

func (l *localKB) close() error {
	err := errors.Join(l.kb.Close(), l.store.Close())
	if l.model != nil {
		err = errors.Join(err, l.model.Close())
	}
	if l.tmp != "" {
		_ = os.RemoveAll(l.tmp)
	}
	return err
}

type remoteKB struct {
	base, token string
	client      *http.Client
}

// httpStatusError is a server's answer other than 2xx.
type httpStatusError struct {
	what   string // "POST /api/v1/knowledge/documents"
	status int
	msg    string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.what, e.status, e.msg)
}

func (r *remoteKB) do(req *http.Request, out any) error {
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Detail  any    `json:"detail"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		msg := e.Message
		if s, ok := e.Detail.(string); ok && s != "" {
			msg = s
		}
		if msg == "" {
			msg = strings.TrimSpace(string(body))
		}
		return &httpStatusError{what: req.Method + " " + req.URL.Path, status: resp.StatusCode, msg: msg}
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (r *remoteKB) upload(ctx context.Context, path string, body []byte, title, docType string, scope embed.Scope) (bool, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	// The server streams the file part into the knowledge base as it
	// arrives, so the fields go first.
	_ = mw.WriteField("title", title)
	_ = mw.WriteField("document_type", docType)
	_ = mw.WriteField("scope", string(scope))
	fw, err := mw.CreateFormFile("file", filepath.Base(path))
	if err != nil {
		return false, err
	}
	_, _ = fw.Write(body)
	if err := mw.Close(); err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/api/v1/knowledge/documents", &buf)
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var out struct {
		Duplicate bool `json:"duplicate"`
	}
	err = r.do(req, &out)
	if he := (*httpStatusError)(nil); errors.As(err, &he) && he.status == http.StatusForbidden && scope == embed.ScopeGlobal {
		err = fmt.Errorf("%w (global documents need an admin's token; --scope user adds them to your own)", err)
	}
	return out.Duplicate, err
}

func (r *remoteKB) search(ctx context.Context, query string, k int) ([]embed.EvalHit, error) {
	payload, _ := json.Marshal(map[string]any{"query": query, "limit": 50})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/api/v1/knowledge/search", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		Results []struct {
			DocumentID string `json:"document_id"`
			Metadata   struct {
				Title    string `json:"title"`
				Filename string `json:"filename"`
			} `json:"metadata"`
		} `json:"results"`
	}
	if err := r.do(req, &out); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var hits []embed.EvalHit
	for _, res := range out.Results {
		if seen[res.DocumentID] {
			continue
		}
		seen[res.DocumentID] = true
		hits = append(hits, embed.EvalHit{Title: res.Metadata.Title, Filename: res.Metadata.Filename})
		if len(hits) == k {
			break
		}
	}
	return hits, nil
}

// isAdmin reports whether the token belongs to an admin (GET
// /api/v1/auth/me).
func (r *remoteKB) isAdmin(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/v1/auth/me", nil)
	if err != nil {
		return false, err
	}
	var me struct {
		Roles []string `json:"roles"`
	}
	if err := r.do(req, &me); err != nil {
		return false, err
	}
	return slices.Contains(me.Roles, "admin"), nil
}

func (r *remoteKB) finish(context.Context) error { return nil } // the server ingests on its own
func (r *remoteKB) close() error                 { return nil }

func runKBIngest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		kf             kbFlags
		scope, docType string
	)
	fs := flag.NewFlagSet("kb ingest", flag.ContinueOnError)
	kf.register(fs)
	fs.StringVar(&scope, "scope", "global", "scope of the documents: global or user (over --server, user when the token is not an admin's)")
	fs.StringVar(&docType, "document-type", "runbook", "document_type given to every document")
	flags, paths := splitArgs(args)
	if err := parseFlags(fs, flags, getenv, stdout); err != nil {
		return err
	}
	if scope != "global" && scope != "user" {
		return fmt.Errorf("--scope must be global or user, not %q", scope)
	}
	scopeSet := false
	fs.Visit(func(f *flag.Flag) { scopeSet = scopeSet || f.Name == "scope" })
	if len(paths) == 0 {
		return errors.New("nothing to ingest: give one or more files or directories")
	}
	files, skipped, err := collectFiles(paths)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		fmt.Fprintf(stderr, "skipping %d files the knowledge base does not read (unsupported type, or not a regular file): %s\n",
			len(skipped), listSome(skipped, 10))
	}
	target, err := kf.open()
	if err != nil {
		return err
	}
	defer target.close()
	if r, ok := target.(*remoteKB); ok && !scopeSet {
		// Only admins may add global documents: a user's token adds the
		// user's own unless --scope says otherwise.
		if admin, err := r.isAdmin(ctx); err == nil && !admin {
			scope = "user"
			fmt.Fprintln(stderr, "this account is not an admin: adding the documents as its own (--scope user); an admin's token adds global ones")
		}
	}
	added, dups, failed := ingestFiles(ctx, target, files, embed.Scope(scope), docType, stderr)
	if err := target.finish(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ingested %d new, %d already present, %d failed (of %d files)\n", added, dups, failed, len(files))
	if failed > 0 {
		return fmt.Errorf("%d files failed", failed)
	}
	return nil
}

// collectFiles expands directories into their supported, non-hidden files.
// collectFiles returns the files to ingest under paths (hidden files and
// directories left out) and, under directories, the files it passes over:
// types the knowledge base does not read, and anything not a regular file
// (a symbolic link is not followed).
func collectFiles(paths []string) (files, skipped []string, err error) {
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			switch {
			case d.Type().IsRegular() && embed.SupportedExtension(d.Name()):
				files = append(files, path)
			case !d.IsDir():
				skipped = append(skipped, path)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return files, skipped, nil
}

// listSome joins the first n of names, saying how many more there are.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

func ingestFiles(ctx context.Context, t kbTarget, files []string, scope embed.Scope, docType string, progress io.Writer) (added, dups, failed int) {
	for i, f := range files {
		if ctx.Err() != nil {
			failed += len(files) - i
			return
		}
		body, err := os.ReadFile(f)
		if err == nil {
			var dup bool
			dup, err = t.upload(ctx, f, body, embed.TitleFor(f, body), docType, scope)
			if dup {
				dups++
				fmt.Fprintf(progress, "[%d/%d] %s (already ingested)\n", i+1, len(files), filepath.Base(f))
				continue
			}
		}
		if err != nil {
			failed++
			fmt.Fprintf(progress, "[%d/%d] %s: %v\n", i+1, len(files), filepath.Base(f), err)
			continue
		}
		added++
		fmt.Fprintf(progress, "[%d/%d] %s\n", i+1, len(files), filepath.Base(f))
	}
	return
}

func runKBEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		kf              kbFlags
		queries, corpus string
		k               int
	)
	fs := flag.NewFlagSet("kb eval", flag.ContinueOnError)
	kf.register(fs)
	fs.StringVar(&queries, "queries", "", "JSON-lines file of {\"query\", \"relevant\"}")
	fs.StringVar(&corpus, "corpus", "", "directory to ingest into a temporary store first (without --data/--server)")
	fs.IntVar(&k, "k", 5, "cut-off rank")
	flags, rest := splitArgs(args)
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	if err := parseFlags(fs, flags, getenv, stdout); err != nil {
		return err
	}
	if queries == "" {
		return errors.New("--queries is required")
	}
	if k < 1 {
		return errors.New("--k must be at least 1")
	}
	f, err := os.Open(queries)
	if err != nil {
		return err
	}
	qs, err := embed.ReadEvalQueries(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", queries, err)
	}
	var target kbTarget
	if corpus != "" && kf.data == "" && kf.server == "" {
		tmp, err := os.MkdirTemp("", "faultmaven-kb-eval-")
		if err != nil {
			return err
		}
		m, err := kf.openModel("")
		if err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
		l, err := openLocalKB(tmp, m)
		if err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
		l.tmp = tmp
		target = l
		defer target.close()
		files, _, err := collectFiles([]string{corpus})
		if err != nil {
			return err
		}
		if _, _, failed := ingestFiles(ctx, target, files, embed.ScopeGlobal, "runbook", io.Discard); failed > 0 {
			return fmt.Errorf("%d corpus files failed to ingest", failed)
		}
		if err := target.finish(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "ingested %d corpus files\n", len(files))
	} else {
		if target, err = kf.open(); err != nil {
			return err
		}
		defer target.close()
	}
	rep, err := embed.Evaluate(ctx, qs, k, target.search)
	if err != nil {
		return err
	}
	if l, ok := target.(*localKB); ok {
		fmt.Fprintf(stdout, "search=%s\n", l.mode())
	}
	printEval(stdout, rep)
	return nil
}

func printEval(w io.Writer, rep embed.EvalReport) {
	fmt.Fprintf(w, "queries=%d\nrecall@%d=%.4f\nMRR=%.4f\n", rep.Queries, rep.K, rep.Recall, rep.MRR)
	for _, m := range rep.Misses {
		fmt.Fprintf(w, "miss: %q (want %s) got: %s\n", m.Query, strings.Join(m.Relevant, ", "), strings.Join(m.Got, " | "))
	}
}
