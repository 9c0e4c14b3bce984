package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/pgsink/pgsink/internal/faults"

	"github.com/pgsink/pgsink/sink/pgcopy"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const runUsage = `Usage: pgsink run --config FILE [--log-format json|console] [--no-migrate]

Consumes the configured topics in the consumer group kafka.group.id and
applies every record to the target database exactly once. Stops gracefully
on SIGTERM or SIGINT: batches in flight are finished and committed, the group
is left, within shutdown_timeout. Serves /metrics, /healthz and /readyz on
metrics.listen.

Flags:
`

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `file` (required)")
	logFormat := fs.String("log-format", "", "json or console (default: log.format of the configuration)")
	noMigrate := fs.Bool("no-migrate", false, "do not apply pgsink's migrations at start (run pgsink migrate up yourself): refuse to start unless pgsink's tables are at this pgsink's version")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		fs.PrintDefaults()
	}
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "pgsink run: --config FILE is required and no arguments are taken")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink run: %v\n", err)
		return 1
	}
	format := string(cfg.Log.Format)
	if *logFormat != "" {
		format = *logFormat
	}
	log, err := newLogger(format, string(cfg.Log.Level), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink run: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log, *noMigrate); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// SIGTERM while starting (migrating, connecting): nothing was
			// applied yet, so this is a clean stop, not a failure.
			log.Info("pgsink stopped before it started: signalled", zap.NamedError("interrupted", err))
			return 0
		}
		log.Error("pgsink stopped", zap.Error(err))
		return 1
	}
	log.Info("pgsink stopped cleanly")
	return 0
}

func serve(ctx context.Context, cfg *config.Config, log *zap.Logger, noMigrate bool) error {
	if !noMigrate {
		if err := dedup.NewMigrator(cfg.Postgres.URL, cfg.Postgres.Schema).Up(ctx); err != nil {
			return startError(err)
		}
	}
	pool, err := newPool(ctx, cfg)
	if err != nil {
		return startError(err)
	}
	defer pool.Close()
	if noMigrate {
		// What validate --no-migrate checks of the version, checked here
		// too: tables at another version fail later and less clearly, or,
		// migrated by a newer pgsink, are written as this one knows them.
		if err := dedup.CheckVersion(ctx, pool, cfg.Postgres.Schema); err != nil {
			return fmt.Errorf("postgres.schema: %w", err)
		}
	}
	if err := checkModeSwitch(ctx, pool, cfg); err != nil {
		return err
	}
	if err := applyStaging(ctx, pool, cfg, log); err != nil {
		return err
	}
	// The check only logs: it must not hold the start of the apply (a slow
	// Connect, or the catalogs of hundreds of derived targets, would delay
	// a restart's resume by as long). It ends before the pool closes.
	stopUpstream := checkUpstreamBeside(ctx, cfg, pool, log)
	defer stopUpstream()
	metrics := connector.NewMetrics()
	hooks, err := faults.FromEnv()
	if err != nil {
		return err
	}
	runner, err := connector.New(cfg, connector.Options{Pool: pool, Log: log, Metrics: metrics, Faults: hooks})
	if err != nil {
		return err
	}
	srv, err := startHTTP(cfg.Metrics.Listen, metrics, runner, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	limit, source := setMemoryLimit(cfg)
	log.Info("pgsink starting", zap.String("group", cfg.Kafka["group.id"]), zap.Int("tables", len(cfg.Tables)),
		zap.String("metrics", cfg.Metrics.Listen), zap.String("postgres", config.RedactURL(cfg.Postgres.URL)),
		zap.String("memory_limit", config.ByteSize(limit).String()), zap.String("memory_limit_from", source))
	return runner.Run(ctx)
}

// startError is an error of the first connections to the target, which
// stops pgsink: nothing is applied yet, and a target never reached is far
// more likely a wrong postgres.url than an outage (as a Kafka Connect
// task with a wrong connection URL fails at its start). Only once it was
// reached is a lost target waited for (apply.retry). A host DNS does not
// know is said in so many words, since the retries after the start treat
// it as an outage.
func startError(err error) error {
	if host, ok := sink.HostNotFound(err); ok {
		return fmt.Errorf("postgres.url: host %q not found in DNS (misspelt, or not published yet): pgsink starts only once it reaches the target: %w", host, err)
	}
	return err
}

// newPool opens the target pool. Session settings bound how long a zombie
// can block the partition's new owner: an idle transaction is ended, a
// lock wait gives up, and dead peers are noticed by TCP keepalives.
func newPool(ctx context.Context, cfg *config.Config) (*pgxpool.Pool, error) {
	pc, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return pool, nil
}

// poolConfig is the target pool's configuration: postgres.url as pgx reads
// it (so statement_cache_capacity and the other pgx and libpq parameters of
// the URL apply; docs/scaling.md sizes the statement cache), with the pool
// size and session settings pgsink needs.
func poolConfig(cfg *config.Config) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(cfg.Postgres.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres.url: %v", config.RedactURL(err.Error()))
	}
	// One connection per partition applied in parallel, one for claims and
	// readiness checks.
	pc.MaxConns = int32(cfg.Postgres.MaxConnections) + 1
	rp := pc.ConnConfig.RuntimeParams
	rp["application_name"] = "pgsink"
	rp["idle_in_transaction_session_timeout"] = "15s"
	rp["lock_timeout"] = "20s"
	rp["tcp_keepalives_idle"] = "10"
	rp["tcp_keepalives_interval"] = "5"
	rp["tcp_keepalives_count"] = "3"
	// pgx has no binary codec for timetz and money; the decoder ships them,
	// and money's fraction digits follow the server's lc_monetary.
	pc.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		var digits int
		if err := conn.QueryRow(ctx, `SELECT scale('0'::money::numeric)`).Scan(&digits); err != nil {
			return fmt.Errorf("read money's fraction digits: %w", err)
		}
		pgcopy.RegisterTypes(conn.TypeMap(), digits)
		return nil
	}
	return pc, nil
}

// pprofEnv=1 serves net/http/pprof on metrics.listen.
const pprofEnv = "PGSINK_PPROF"

func startHTTP(addr string, metrics *connector.Metrics, runner *connector.Runner, log *zap.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry(), promhttp.HandlerOpts{}))
	if os.Getenv(pprofEnv) == "1" {
		// Profiling on demand (make bench profiles the drain). Off by
		// default: the metrics listener may be reachable beyond loopback.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		log.Info("pprof served under /debug/pprof/ (" + pprofEnv + "=1)")
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := runner.Ready(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.Error(err))
		}
	}()
	return srv, nil
}

func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json", "":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	sink := zapcore.AddSync(w)
	if f, ok := w.(*os.File); ok {
		sink = zapcore.Lock(f)
	}
	return zap.New(zapcore.NewCore(enc, sink, lvl)), nil
}

// setMemoryLimit gives the Go heap a soft limit derived from
// apply.max_buffered_bytes, unless GOMEMLIMIT sets one. The budget bounds
// the raw records pgsink holds; their decoded form, the COPY buffers and
// the runtime come on top, hence twice the budget plus 64 MiB. Without a
// limit the heap grows to twice what is live before the GC runs (GOGC=100),
// several times the budget in RSS (docs/benchmarks.md). A soft
// limit costs only GC work while the live heap stays under it.
func setMemoryLimit(cfg *config.Config) (limit int64, source string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	limit = 2*int64(cfg.Apply.MaxBufferedBytes) + 64<<20
	debug.SetMemoryLimit(limit)
	return limit, "apply.max_buffered_bytes"
}
