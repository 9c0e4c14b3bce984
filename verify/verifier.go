package verify

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
)

// Options bound what a run reads and reports.
type Options struct {
	ChunkRows        int
	MaxRowsPerSecond int
	StatementTimeout time.Duration
	SettleTimeout    time.Duration
	// MaxKeys bounds the differing keys a result lists (all are counted).
	MaxKeys int
	// Rounds bounds the re-checks of a key the source keeps changing.
	Rounds int
}

// OptionsFrom returns the configured options.
func OptionsFrom(c config.Verify) Options {
	return Options{ChunkRows: c.ChunkRows, MaxRowsPerSecond: c.MaxRowsPerSecond,
		StatementTimeout: c.StatementTimeout.Std(), SettleTimeout: c.SettleTimeout.Std(), MaxKeys: 20, Rounds: 5}
}

// Verifier compares tables of one source database with their targets.
type Verifier struct {
	src, dst *pgx.Conn
	opts     Options
	settler  Settler
	progress *progress
}

// Connect opens the two sessions a Verifier reads through, with the
// settings that make text forms equal on both servers, the statement
// timeout, and (unless writeSource, for --repair's signals) a read-only
// source session.
func Connect(ctx context.Context, sourceURL, targetURL string, opts Options, writeSource bool) (src, dst *pgx.Conn, err error) {
	open := func(url string, readOnly bool) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, err
		}
		for k, v := range sessionParams {
			cfg.RuntimeParams[k] = v
		}
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
		cfg.RuntimeParams["application_name"] = "pgsink verify"
		if readOnly {
			cfg.RuntimeParams["default_transaction_read_only"] = "on"
		}
		return pgx.ConnectConfig(ctx, cfg)
	}
	if src, err = open(sourceURL, !writeSource); err != nil {
		return nil, nil, fmt.Errorf("verify: source: %w", err)
	}
	if dst, err = open(targetURL, true); err != nil {
		src.Close(ctx)
		return nil, nil, fmt.Errorf("verify: target: %w", err)
	}
	return src, dst, nil
}

// New returns a Verifier reading src and dst; progress goes to out (a
// terminal gets one line redrawn, anything else plain lines).
func New(src, dst *pgx.Conn, opts Options, settler Settler, out io.Writer) *Verifier {
	if opts.Rounds <= 0 {
		opts.Rounds = 5
	}
	return &Verifier{src: src, dst: dst, opts: opts, settler: settler, progress: newProgress(out)}
}

// Table compares one table and re-checks each differing key once pgsink
// has applied what the source had committed.
func (v *Verifier) Table(ctx context.Context, t *Table) (*TableResult, error) {
	start := time.Now()
	res := &TableResult{Source: t.Source.String(), Target: t.Target.String(), Unmapped: t.Unmapped}
	if err := v.src.QueryRow(ctx, `SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::regclass`,
		sourceSide(t).table).Scan(&v.progress.total); err != nil {
		return nil, fmt.Errorf("verify: source %s: %w", t.Source, err)
	}
	diff, err := v.walk(ctx, t, res)
	if err != nil {
		return nil, err
	}
	v.progress.done(t.Target.String(), res.SourceRows, time.Since(start))
	ahead, err := v.versionsAhead(ctx, t, res)
	if err != nil {
		return nil, err
	}
	var candidates []candidate
	for _, c := range diff {
		keys, err := v.drill(ctx, t, c)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if !ahead[k.text] {
				candidates = append(candidates, k)
			}
		}
	}
	if err := v.settle(ctx, t, candidates, res); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
