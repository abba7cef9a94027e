package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/faultmaven/faultmaven/actors"
	"github.com/faultmaven/faultmaven/actors/agent"
	"github.com/faultmaven/faultmaven/actors/agent/llm"
	"github.com/faultmaven/faultmaven/actors/evidence"
	"github.com/faultmaven/faultmaven/embed"
	"github.com/faultmaven/faultmaven/embed/model"
	"github.com/faultmaven/faultmaven/gateway"
	"github.com/faultmaven/faultmaven/gateway/auth"
	"github.com/faultmaven/faultmaven/gateway/session"
	"github.com/faultmaven/faultmaven/persistence"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
)

// serveConfig is every setting of `faultmaven serve`.
type serveConfig struct {
	Addr              string
	Data              string
	LogFormat         string
	LogLevel          string
	CaseIdle          time.Duration
	SnapshotEvery     int
	CaseTimeout       time.Duration
	CORSOrigins       listFlag
	AllowRegistration bool
	AccessTTL         time.Duration
	RefreshTTL        time.Duration
	RateLimitIP       int
	RateLimitUser     int
	RateLimitAuth     int
	MaxBody           int64
	TrustedProxies    int
	ShutdownTimeout   time.Duration
	DashboardURL      string
	PublicURL         string

	LLMBaseURL        string
	LLMAPIKey         string
	LLMModel          string
	LLMName           string
	LLMTools          bool
	LLMFallbacks      string
	LLMConfig         string
	LLMAttemptTimeout time.Duration
	LLMMaxRetries     int
	TurnTimeout       time.Duration
	TurnSyncWait      time.Duration
	RedactEmails      bool
	PprofAddr         string
	ContextTokens     int
	ReplyTokens       int
	WSOrigins         listFlag
	WSMaxConns        int
	MaxUpload         int64
	DigestBudget      int
	SearchTimeout     time.Duration

	EmbedBackend  string
	ORTLib        string
	EmbedModel    string
	EmbedModelDir string
	EmbedWorkers  int
}

func serveFlags(cfg *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8090", "listen address host:port (a non-loopback address needs an admin when registration is open)")
	fs.StringVar(&cfg.Data, "data", "./data", "data directory (database, blobs, signing key)")
	fs.StringVar(&cfg.LogFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&cfg.CaseIdle, "case-idle", 10*time.Minute, "stop a case's actor after this long without activity (it reloads on the next message)")
	fs.IntVar(&cfg.SnapshotEvery, "snapshot-every", 64, "write a case snapshot every N events")
	fs.DurationVar(&cfg.CaseTimeout, "case-timeout", 10*time.Second, "deadline for one request to a case actor")
	fs.Var(&cfg.CORSOrigins, "cors-origins", "comma-separated origins allowed by CORS, e.g. chrome-extension://<id>; patterns like chrome-extension://* are allowed")
	fs.BoolVar(&cfg.AllowRegistration, "allow-registration", true, "let anyone register an account (the first account becomes admin)")
	fs.DurationVar(&cfg.AccessTTL, "access-ttl", time.Hour, "lifetime of access tokens (more than 5m)")
	fs.DurationVar(&cfg.RefreshTTL, "refresh-ttl", 30*24*time.Hour, "lifetime of refresh tokens")
	fs.IntVar(&cfg.RateLimitIP, "rate-limit-ip", 1200, "requests per minute per client IP")
	fs.IntVar(&cfg.RateLimitUser, "rate-limit-user", 600, "authenticated requests per minute per user")
	fs.IntVar(&cfg.RateLimitAuth, "rate-limit-auth", 30, "login/register/refresh requests per minute per client IP")
	fs.Int64Var(&cfg.MaxBody, "max-body", 1<<20, "largest JSON request body in bytes")
	fs.IntVar(&cfg.TrustedProxies, "trusted-proxies", 0, "number of reverse proxies in front whose X-Forwarded-For is trusted (0: use the peer address)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take before it is cut short")
	fs.StringVar(&cfg.DashboardURL, "dashboard-url", "", "URL of a FaultMaven dashboard to advertise in capabilities (optional)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "absolute base URL clients reach this server at (for Location headers behind a proxy); default: from the request")
	fs.StringVar(&cfg.LLMBaseURL, "llm-base-url", "", "OpenAI-compatible endpoint of the primary LLM, e.g. https://api.openai.com/v1/ or http://localhost:11434/v1/ (empty: no LLM, retrieval-only answers)")
	fs.StringVar(&cfg.LLMAPIKey, "llm-api-key", "", "API key of the primary LLM (prefer the FM_LLM_API_KEY variable: flags are visible to other local users)")
	fs.StringVar(&cfg.LLMModel, "llm-model", "", "model name of the primary LLM, e.g. gpt-4o-mini or llama3.1")
	fs.StringVar(&cfg.LLMName, "llm-name", "primary", "name of the primary LLM in logs, metrics and the egress audit")
	fs.BoolVar(&cfg.LLMTools, "llm-tools", true, "the primary LLM supports tool calls (false: use JSON structured output instead)")
	fs.StringVar(&cfg.LLMFallbacks, "llm-fallbacks", "", `fallback LLMs tried in order when the primary fails, as JSON: [{"name":"ollama","base_url":"http://localhost:11434/v1/","model":"llama3.1","api_key_env":"OLLAMA_KEY"}]`)
	fs.StringVar(&cfg.LLMConfig, "llm-config", "", "file with the fallback LLMs as the same JSON array (instead of --llm-fallbacks)")
	fs.DurationVar(&cfg.LLMAttemptTimeout, "llm-attempt-timeout", 60*time.Second, "give up on an LLM attempt that makes no progress (no response or no new chunk) for this long")
	fs.IntVar(&cfg.LLMMaxRetries, "llm-max-retries", 2, "retries per LLM provider on 429/5xx (Retry-After is honoured)")
	fs.DurationVar(&cfg.TurnTimeout, "turn-timeout", 5*time.Minute, "deadline of a whole agent turn, fallbacks and tool calls included")
	fs.DurationVar(&cfg.TurnSyncWait, "turn-sync-wait", 25*time.Second, "how long POST /turns waits for the answer before replying 202 with a job to poll")
	fs.Var(&cfg.WSOrigins, "ws-origins", "comma-separated browser origins allowed to open the WebSocket (default: --cors-origins); clients without an Origin header are always allowed")
	fs.IntVar(&cfg.WSMaxConns, "ws-max-conns-per-user", 20, "open WebSocket connections allowed per user")
	fs.Int64Var(&cfg.MaxUpload, "max-upload", 50<<20, "largest upload (turn with files, evidence) in bytes")
	fs.IntVar(&cfg.DigestBudget, "digest-budget", 8000, "characters of an evidence file's digest handed to the LLM")
	fs.DurationVar(&cfg.SearchTimeout, "evidence-search-timeout", 2*time.Second, "time limit of one evidence search (regular expressions included)")
	fs.IntVar(&cfg.ContextTokens, "context-tokens", 12000, "token budget of the prompt sent to the LLM (recent turns verbatim, older ones summarised); at least 6000")
	fs.IntVar(&cfg.ReplyTokens, "reply-tokens", 1500, "most tokens the LLM may write in one reply")
	fs.StringVar(&cfg.EmbedBackend, "embed-backend", "auto", "embedding backend: auto (ONNX Runtime when its library is found, else hugot), hugot (pure Go) or ort")
	fs.StringVar(&cfg.ORTLib, "ort-lib", "", "path of libonnxruntime.so for the ort backend (default: FM_ORT_LIB, beside the binary, /usr/local/lib, /usr/lib)")
	fs.StringVar(&cfg.EmbedModel, "embed-model", model.DefaultRepo, "embedding model pulled with 'faultmaven model pull', looked up in <data>/models")
	fs.StringVar(&cfg.EmbedModelDir, "embed-model-dir", "", "directory holding the embedding model (model.onnx + tokenizer.json), e.g. for air-gapped installs; overrides --embed-model")
	fs.IntVar(&cfg.EmbedWorkers, "embed-workers", 0, "embedder actors in the embedding pool (0: one per core with ort, one with hugot)")
	fs.BoolVar(&cfg.RedactEmails, "redact-emails", false, "also replace e-mail addresses with pseudonyms before text is sent to an LLM")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", "", "loopback host:port serving Go's runtime profiles at /debug/pprof/ (empty: off)")
	return fs
}

func (c *serveConfig) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		bad("invalid --addr %q (FM_ADDR): want host:port, e.g. 127.0.0.1:8090", c.Addr)
	}
	if c.Data == "" {
		bad("--data (FM_DATA) must not be empty")
	}
	if c.CaseIdle < time.Second {
		bad("--case-idle (FM_CASE_IDLE) must be at least 1s, got %v", c.CaseIdle)
	}
	if c.SnapshotEvery < 1 || c.SnapshotEvery > 100000 {
		bad("--snapshot-every (FM_SNAPSHOT_EVERY) must be 1..100000, got %d", c.SnapshotEvery)
	}
	if c.CaseTimeout < 100*time.Millisecond {
		bad("--case-timeout (FM_CASE_TIMEOUT) must be at least 100ms, got %v", c.CaseTimeout)
	}
	if c.AccessTTL <= 5*time.Minute {
		bad("--access-ttl (FM_ACCESS_TTL) must be more than 5m (the extension refreshes tokens with 5 minutes left), got %v", c.AccessTTL)
	}
	if c.RefreshTTL <= c.AccessTTL {
		bad("--refresh-ttl (FM_REFRESH_TTL) must be longer than --access-ttl")
	}
	if c.RateLimitIP < 1 || c.RateLimitUser < 1 || c.RateLimitAuth < 1 {
		bad("--rate-limit-ip, --rate-limit-user and --rate-limit-auth must be at least 1")
	}
	if c.MaxBody < 1024 {
		bad("--max-body (FM_MAX_BODY) must be at least 1024 bytes, got %d", c.MaxBody)
	}
	if c.TrustedProxies < 0 {
		bad("--trusted-proxies (FM_TRUSTED_PROXIES) must not be negative")
	}
	if c.ShutdownTimeout < time.Second {
		bad("--shutdown-timeout (FM_SHUTDOWN_TIMEOUT) must be at least 1s")
	}
	if c.LLMBaseURL != "" && c.LLMModel == "" {
		bad("--llm-model (FM_LLM_MODEL) is required when --llm-base-url is set")
	}
	if c.LLMBaseURL == "" && (c.LLMFallbacks != "" || c.LLMConfig != "") {
		bad("--llm-fallbacks/--llm-config need a primary LLM: set --llm-base-url (FM_LLM_BASE_URL) and --llm-model")
	}
	if c.LLMFallbacks != "" && c.LLMConfig != "" {
		bad("set either --llm-fallbacks (FM_LLM_FALLBACKS) or --llm-config (FM_LLM_CONFIG), not both")
	}
	if c.LLMAttemptTimeout < time.Second || c.TurnTimeout < c.LLMAttemptTimeout {
		bad("--llm-attempt-timeout must be at least 1s and --turn-timeout at least as long")
	}
	if c.LLMMaxRetries < 0 || c.LLMMaxRetries > 10 {
		bad("--llm-max-retries (FM_LLM_MAX_RETRIES) must be 0..10")
	}
	if c.TurnSyncWait < time.Second || c.TurnSyncWait > 280*time.Second {
		bad("--turn-sync-wait (FM_TURN_SYNC_WAIT) must be between 1s and 280s (the extension gives up after 300s)")
	}
	if c.WSMaxConns < 1 {
		bad("--ws-max-conns-per-user (FM_WS_MAX_CONNS_PER_USER) must be at least 1")
	}
	if c.MaxUpload < 1024 {
		bad("--max-upload (FM_MAX_UPLOAD) must be at least 1024 bytes, got %d", c.MaxUpload)
	}
	if c.DigestBudget < 500 || c.DigestBudget > 100_000 {
		bad("--digest-budget (FM_DIGEST_BUDGET) must be 500..100000, got %d", c.DigestBudget)
	}
	if c.SearchTimeout < 10*time.Millisecond || c.SearchTimeout > time.Minute {
		bad("--evidence-search-timeout (FM_EVIDENCE_SEARCH_TIMEOUT) must be between 10ms and 1m")
	}
	if c.ContextTokens < 6000 || c.ContextTokens > 1_000_000 {
		bad("--context-tokens (FM_CONTEXT_TOKENS) must be 6000..1000000, got %d", c.ContextTokens)
	}
	if c.ReplyTokens < 64 || c.ReplyTokens > 100_000 {
		bad("--reply-tokens (FM_REPLY_TOKENS) must be 64..100000, got %d", c.ReplyTokens)
	}
	if _, err := model.ParseBackend(c.EmbedBackend); err != nil {
		bad("--embed-backend (FM_EMBED_BACKEND): %v", err)
	}
	if c.EmbedModelDir == "" {
		if err := model.ValidRepo(c.EmbedModel); err != nil {
			bad("--embed-model (FM_EMBED_MODEL): %v", err)
		}
	}
	if c.EmbedWorkers < 0 || c.EmbedWorkers > 256 {
		bad("--embed-workers (FM_EMBED_WORKERS) must be 0..256, got %d", c.EmbedWorkers)
	}
	if err := validPprofAddr(c.PprofAddr); err != nil {
		bad("%v", err)
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			bad("--cors-origins (FM_CORS_ORIGINS) must not be \"*\": credentials are allowed, so list the origins")
		}
	}
	return errors.Join(errs...)
}

// isLoopback reports whether a listen host only accepts local connections.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// node is one running core node; Close shuts it down in the fixed order.
type node struct {
	log    *zap.Logger
	store  *persistence.Store
	engine *actor.Engine
	cases  *actors.Cases
	auth   *auth.Service
	kb     *embed.KB
	emb    *embedding
	api    *gateway.Server
	http   *http.Server
	ln     net.Listener

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	if err := parseFlags(serveFlags(&cfg), args, getenv, stdout); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	slog.SetDefault(slog.New(newSlogHandler(log)))

	n, err := startNode(cfg, getenv, log)
	if err != nil {
		return err
	}
	log.Info("faultmaven serving", zap.String("addr", n.ln.Addr().String()), zap.String("data", cfg.Data),
		zap.String("version", version))
	if cfg.PprofAddr != "" {
		pp, err := startPprof(cfg.PprofAddr, log)
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			return errors.Join(err, n.shutdown(sctx))
		}
		defer pp.stop()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- n.http.Serve(n.ln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down (a second signal forces exit)")
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server failed", zap.Error(err))
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return n.shutdown(sctx)
}

func startNode(cfg serveConfig, getenv func(string) string, log *zap.Logger) (*node, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	writeLat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "faultmaven_pebble_write_seconds",
		Help:    "Latency of Pebble writes and batch commits.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
	}, []string{"space", "sync"})
	reg.MustRegister(writeLat)

	store, err := persistence.Open(cfg.Data, &persistence.Options{
		Logger: log,
		OnWrite: func(space string, sync bool, d time.Duration) {
			writeLat.WithLabelValues(space, fmt.Sprint(sync)).Observe(d.Seconds())
		},
	})
	if err != nil {
		if errors.Is(err, persistence.ErrLocked) {
			return nil, fmt.Errorf("data directory %s is already in use by another faultmaven process", cfg.Data)
		}
		return nil, err
	}
	n := &node{log: log, store: store}
	fail := func(err error) (*node, error) {
		_ = n.shutdown(context.Background())
		return nil, err
	}
	authKS, err := store.Keyspace(persistence.SpaceAuth)
	if err != nil {
		return fail(err)
	}
	n.auth, err = auth.New(authKS, auth.Config{
		AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL, AllowRegistration: cfg.AllowRegistration,
		KeyFile: filepath.Join(cfg.Data, "secrets", "jwt.key"),
	})
	if err != nil {
		return fail(err)
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	if !isLoopback(host) && n.auth.RegistrationOpen() {
		hasAdmin, err := n.auth.AdminExists(context.Background())
		if err != nil {
			return fail(err)
		}
		if !hasAdmin {
			return fail(fmt.Errorf("refusing to listen on non-loopback address %s while registration is open and no admin exists: "+
				"anyone reaching the port could register as admin. Create the admin first with "+
				"'faultmaven user add --data %s --username <name> --admin --password-stdin', "+
				"or listen on 127.0.0.1, or pass --allow-registration=false", cfg.Addr, cfg.Data))
		}
	}
	sessKS, err := store.Keyspace(persistence.SpaceSession)
	if err != nil {
		return fail(err)
	}
	sessions, err := session.New(sessKS, session.Config{})
	if err != nil {
		return fail(err)
	}
	caseKS, err := store.Keyspace(persistence.SpaceCase)
	if err != nil {
		return fail(err)
	}
	auditKS, err := store.Keyspace(persistence.SpaceAudit)
	if err != nil {
		return fail(err)
	}
	nodeSecret, err := persistence.LoadOrCreateSecret(filepath.Join(cfg.Data, "secrets", "node.key"), 32)
	if err != nil {
		return fail(err)
	}
	client, err := buildLLM(cfg, getenv, log.Named("llm"))
	if err != nil {
		return fail(err)
	}
	if client == nil {
		log.Warn("no LLM configured (--llm-base-url / FM_LLM_BASE_URL): turns get retrieval-only answers")
	}
	evidKS, err := store.Keyspace(persistence.SpaceEvid)
	if err != nil {
		return fail(err)
	}
	evid, err := evidence.New(evidKS, evidKS.Blobs(), evidence.Config{
		MaxUpload: cfg.MaxUpload, DigestBudget: cfg.DigestBudget, SearchTimeout: cfg.SearchTimeout,
		Logger: log.Named("evidence"),
	})
	if err != nil {
		return fail(err)
	}
	n.engine, err = actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return fail(fmt.Errorf("start actor engine: %w", err))
	}
	actors.StartMonitor(n.engine, log.Named("actors"), reg)
	n.emb, err = startEmbedding(cfg, n.engine, log.Named("embed"), reg)
	if err != nil {
		return fail(err)
	}
	kbKS, err := store.Keyspace(persistence.SpaceKB)
	if err != nil {
		return fail(err)
	}
	// Rebuilds the search index from Pebble and resumes unfinished ingestion.
	kbCfg := embed.Config{MaxDocBytes: cfg.MaxUpload, Logger: log.Named("kb"), PDFCacheDir: filepath.Join(cfg.Data, "cache", "pdfium")}
	if n.emb.embedder != nil {
		kbCfg.Embedder, kbCfg.ModelID = n.emb.embedder, n.emb.info.ID
		kbCfg.IndexDir = filepath.Join(cfg.Data, "index")
		// One ingestion worker per embedder: a document's few chunks make
		// one small batch, so a single worker would leave the others idle
		// (docs/benchmarks.md, ingestion).
		kbCfg.Workers = min(n.emb.workers, 64)
	}
	n.kb, err = embed.Open(kbKS, kbKS.Blobs(), kbCfg)
	if err != nil {
		return fail(err)
	}
	n.cases, err = actors.NewCases(actors.Config{
		CaseIdle: cfg.CaseIdle, SnapshotEvery: cfg.SnapshotEvery, RequestTimeout: cfg.CaseTimeout,
		TurnTimeout: cfg.TurnTimeout, RedactEmails: cfg.RedactEmails,
		Agent: agent.Config{ContextTokens: cfg.ContextTokens, MaxTokens: cfg.ReplyTokens},
	}, actors.Deps{Keyspace: caseKS, Engine: n.engine, Logger: log.Named("cases"), Metrics: reg,
		LLM: client, Audit: auditKS, NodeSecret: nodeSecret, Evidence: gateway.NewEvidenceSource(evid),
		Knowledge: gateway.NewKnowledgeSource(n.kb)})
	if err != nil {
		return fail(err)
	}
	n.api, err = gateway.New(gateway.Config{
		CORSOrigins: cfg.CORSOrigins, RateLimitIP: cfg.RateLimitIP, RateLimitUser: cfg.RateLimitUser,
		RateLimitAuth: cfg.RateLimitAuth, MaxBodyBytes: cfg.MaxBody, TrustedProxies: cfg.TrustedProxies,
		Version: version, DashboardURL: cfg.DashboardURL,
		TurnSyncWait: cfg.TurnSyncWait, PublicURL: cfg.PublicURL,
		WSOrigins: cfg.WSOrigins, WSMaxConnsPerUser: cfg.WSMaxConns, MaxUploadBytes: cfg.MaxUpload,
	}, gateway.Deps{
		Logger: log, Auth: n.auth, Sessions: sessions, Cases: n.cases, Evidence: evid, Knowledge: n.kb,
		Ready: func() error {
			if err := store.Healthy(); err != nil {
				return fmt.Errorf("storage: %w", err)
			}
			return n.cases.Ready()
		},
		Components: func() map[string]any { return map[string]any{"search": n.emb.status(n.kb)} },
		Gatherer:   reg, Registerer: reg,
	})
	if err != nil {
		return fail(err)
	}
	n.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fail(fmt.Errorf("listen on --addr %s: %w", cfg.Addr, err))
	}
	n.startJanitor(sessions)
	n.http = &http.Server{
		Handler:           n.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return n, nil
}

// shutdown stops the node in one fixed order: stop accepting and finish
// in-flight HTTP requests → close WebSockets → drain the case actors → stop
// knowledge ingestion → stop the embedding pool → close Pebble.
func (n *node) shutdown(ctx context.Context) error {
	var errs []error
	if n.http != nil {
		if err := n.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http: %w", err))
			_ = n.http.Close()
		}
	} else if n.ln != nil {
		_ = n.ln.Close()
	}
	if n.api != nil {
		// WebSocket connections are hijacked: http.Server.Shutdown does not
		// wait for them, the gateway closes them (1001 going away).
		if err := n.api.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close websockets: %w", err))
		}
	}
	if n.stopJanitor != nil {
		n.stopJanitor()
		<-n.janitorDone
	}
	if n.cases != nil {
		if err := n.cases.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.kb != nil {
		if err := n.kb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop knowledge ingestion: %w", err))
		}
	}
	if n.emb != nil {
		n.emb.stop()
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close storage: %w", err))
		}
	}
	if len(errs) == 0 {
		n.log.Info("shutdown complete")
	}
	return errors.Join(errs...)
}

// startJanitor runs periodic clean-up (expired sessions) until shutdown; the
// node owns the goroutine and waits for it.
func (n *node) startJanitor(sessions *session.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopJanitor, n.janitorDone = cancel, make(chan struct{})
	go func() {
		defer close(n.janitorDone)
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if removed, err := sessions.Sweep(ctx); err != nil {
					n.log.Warn("session sweep failed", zap.Error(err))
				} else if removed > 0 {
					n.log.Info("expired sessions removed", zap.Int("count", removed))
				}
			}
		}
	}()
}

// buildLLM assembles the provider chain (primary first, then fallbacks), or
// returns nil when no LLM is configured.
func buildLLM(cfg serveConfig, getenv func(string) string, log *zap.Logger) (llm.Client, error) {
	if cfg.LLMBaseURL == "" {
		return nil, nil
	}
	tools := cfg.LLMTools
	providers := []llm.ProviderConfig{{Name: cfg.LLMName, BaseURL: cfg.LLMBaseURL, APIKey: cfg.LLMAPIKey, Model: cfg.LLMModel, Tools: &tools}}
	switch {
	case cfg.LLMFallbacks != "":
		fb, err := llm.ParseFallbacks(cfg.LLMFallbacks, getenv)
		if err != nil {
			return nil, fmt.Errorf("invalid --llm-fallbacks (FM_LLM_FALLBACKS): %w", err)
		}
		providers = append(providers, fb...)
	case cfg.LLMConfig != "":
		fb, err := llm.LoadConfigFile(cfg.LLMConfig, getenv)
		if err != nil {
			return nil, fmt.Errorf("invalid --llm-config (FM_LLM_CONFIG) %s: %w", cfg.LLMConfig, err)
		}
		providers = append(providers, fb...)
	}
	retries := cfg.LLMMaxRetries
	if retries == 0 {
		retries = -1 // llm.Config reads 0 as "default"; the flag's 0 means none
	}
	chain, err := llm.NewChain(llm.Config{
		Providers: providers, AttemptTimeout: cfg.LLMAttemptTimeout, TurnTimeout: cfg.TurnTimeout, MaxRetries: retries,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("LLM configuration: %w", err)
	}
	names := make([]string, len(providers))
	for i, p := range providers {
		names[i] = p.Name + " (" + p.Model + ")"
		if pathless(p.BaseURL) {
			log.Warn("LLM base URL has no path: OpenAI-compatible servers usually serve under /v1/ "+
				"(Ollama http://localhost:11434/v1/, vLLM http://localhost:8000/v1/); if turns fail with 404, add it",
				zap.String("provider", p.Name))
		}
	}
	log.Info("LLM providers", zap.Strings("chain", names))
	return chain, nil
}

// pathless reports whether an LLM base URL stops at the host
// ("http://localhost:11434"), the usual cause of 404s on every turn.
func pathless(baseURL string) bool {
	u, err := url.Parse(baseURL)
	return err == nil && strings.Trim(u.Path, "/") == ""
}
