package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"go.uber.org/zap"
)

// parseUntil reads --until: an RFC 3339 time (fractions allowed) or
// lsn:X/Y as PostgreSQL prints an LSN.
func parseUntil(s string, now time.Time) (connector.Bound, error) {
	if rest, ok := strings.CutPrefix(s, "lsn:"); ok {
		hi, lo, ok := strings.Cut(rest, "/")
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if !ok || err1 != nil || err2 != nil || h<<32|l == 0 {
			return connector.Bound{}, fmt.Errorf("%q: want lsn:X/Y with X and Y hexadecimal, as pg_current_wal_lsn() prints it", s)
		}
		return connector.Bound{LSN: int64(h<<32 | l)}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return connector.Bound{}, fmt.Errorf("%q: want an RFC 3339 time (2026-12-06T15:04:05.123Z) or lsn:X/Y", s)
	}
	if t.After(now) {
		return connector.Bound{}, fmt.Errorf("%q is in the future: its state does not exist yet", s)
	}
	return connector.Bound{At: t}, nil
}

// replayInto fills the table req.into with the state of req.table as of
// req.until: every record up to it, from the beginning of its topics. It
// resumes a fill of the same table killed before it finished.
func replayInto(ctx context.Context, cfg *config.Config, req replayRequest, out io.Writer, log *zap.Logger) error {
	in, err := connector.NewInspector(cfg)
	if err != nil {
		return err
	}
	defer in.Close()
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	// Before the high watermarks (planFill): every record of a transaction
	// the resolver has applied is then below them.
	cut, err := readTxCut(ctx, conn, cfg)
	if err != nil {
		return err
	}
	plan, err := planFill(ctx, cfg, in, req.table, req.into, true)
	if err != nil {
		return err
	}
	resumed, err := prepareFill(ctx, conn, cfg, plan, false)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(out, "resuming the fill of %s left by a killed replay\n", plan.into)
	} else {
		fmt.Fprintf(out, "created %s like %s\n", plan.into, plan.source)
	}
	pool, err := newPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Each partition ends at the first record past the bound, or at the
	// high watermark read now: records appended later are newer than the
	// bound unless Debezium lags behind it (see docs/operations.md).
	opts := connector.FillOptions{Pool: pool, Log: log, Owner: fillOwner(), Group: plan.group,
		Source: plan.source, Into: plan.into, Partitions: plan.partitions(true), Until: req.until}
	followResolver(cfg, &opts, cut)
	if cut != nil {
		upTo := "none recorded with its commit position yet"
		if cut.CommitLSN > 0 {
			upTo = "committed up to lsn:" + formatLSN(cut.CommitLSN)
		}
		fmt.Fprintf(out, "apply.consistency is transaction: the copy takes the source transactions the resolver has applied (%s), each whole, and none after\n", upTo)
	}
	fill, err := connector.NewFill(cfg, opts)
	if err != nil {
		return err
	}
	progress := &fillProgress{out: out, plan: plan, start: time.Now()}
	if err := fill.Run(ctx, func(p []connector.FillProgress) bool { progress.print(p, ""); return false }); err != nil {
		return fmt.Errorf("fill %s (rerun the same command to resume): %w", plan.into, err)
	}
	progress.final(fill.Progress())
	fmt.Fprintln(out)
	stops := fill.Progress()
	// The copy is nobody's target: its positions and ledger entries go,
	// in one transaction, so a kill leaves either a resumable fill or a
	// finished one.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := dedup.NewOffsets(cfg.Postgres.Schema).DeleteGroup(ctx, tx, plan.group); err != nil {
			return err
		}
		return dedup.NewLedgers(cfg.Postgres.Schema).Forget(ctx, tx, plan.into.Schema+"."+plan.into.Name)
	})
	if err != nil {
		return err
	}
	for _, s := range stops {
		at := ""
		if s.Unapplied {
			at = ", where a source transaction the resolver had not applied begins"
		}
		fmt.Fprintf(out, "%s[%d]: applied up to offset %d%s\n", s.ID.Topic, s.ID.Partition, s.Next, at)
	}
	if n := unapplied(stops); n > 0 {
		fmt.Fprintf(out, "%d of %d partitions ended at a source transaction the resolver had not applied when the copy began: "+
			"the copy holds no part of such a transaction, nor the records after it in those partitions; rerun later for a copy that holds them\n", n, len(stops))
	}
	reportFillDeadLetters(ctx, conn, cfg, plan, out)
	fmt.Fprintf(out, "filled %s with %s as of %s\n", plan.into, plan.source, req.untilText)
	return nil
}
