package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/internal/faults"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// Suffixes of the tables an online rebuild keeps beside its target.
const (
	shadowSuffix   = "__pgsink_shadow"
	replacedSuffix = "__pgsink_old"
)

// besides names the table beside t with suffix, in t's schema (a rename
// cannot move a table to another schema).
func besides(t config.TableName, suffix string) (config.TableName, error) {
	if len(t.Name)+len(suffix) > 63 {
		return config.TableName{}, fmt.Errorf("%s: the name is too long for its rebuild's shadow %q (63 bytes at most)", t, t.Name+suffix)
	}
	return config.TableName{Schema: t.Schema, Name: t.Name + suffix}, nil
}

// replayOnline rebuilds req.table without readers ever seeing it empty or
// partial: a fill builds a shadow from the earliest offset while the
// instances keep applying the table; once the shadow has read every record
// that existed at the start and trails the instances by at most
// req.maxLag records, one transaction holds the instances off, catches the
// shadow up to their positions, swaps the two and moves the ledgers and
// positions (swapShadow). A kill during the fill resumes at the next run;
// a kill during the swap rolls it back, and the next run resumes the fill.
func replayOnline(ctx context.Context, cfg *config.Config, req replayRequest, out io.Writer, log *zap.Logger) error {
	hooks, err := faults.FromEnv()
	if err != nil {
		return err
	}
	in, err := connector.NewInspector(cfg)
	if err != nil {
		return err
	}
	defer in.Close()
	target, err := config.ParseTableName(req.table)
	if err != nil {
		return fmt.Errorf("--table: %w", err)
	}
	shadow, err := besides(target, shadowSuffix)
	if err != nil {
		return err
	}
	replaced, err := besides(target, replacedSuffix)
	if err != nil {
		return err
	}
	plan, err := planFill(ctx, cfg, in, req.table, shadow, false)
	if err != nil {
		return err
	}
	target = plan.source
	conn, err := pgx.Connect(ctx, cfg.Postgres.URL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	if err := sink.CheckSwappable(ctx, conn, target); err != nil {
		return fmt.Errorf("%w: rebuild it in place instead (replay --rebuild --from earliest)", err)
	}
	// A rebuild killed after its swap committed left the table it replaced.
	if err := sink.Drop(ctx, conn, replaced); err != nil {
		return err
	}
	resumed, err := prepareFill(ctx, conn, cfg, plan, true)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Fprintf(out, "resuming the rebuild of %s into %s left by a killed replay\n", target, shadow)
	} else {
		fmt.Fprintf(out, "created %s like %s; filling it from the earliest offset while %s stays live\n", shadow, target, target)
	}
	pool, err := newPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	opts := connector.FillOptions{Pool: pool, Log: log, Owner: fillOwner(), Group: plan.group,
		Source: target, Into: shadow, Partitions: plan.partitions(false)}
	followResolver(cfg, &opts, nil)
	fill, err := connector.NewFill(cfg, opts)
	if err != nil {
		return err
	}
	offsets := dedup.NewOffsets(cfg.Postgres.Schema)
	progress := &fillProgress{out: out, plan: plan, start: time.Now()}
	var checked time.Time
	var lagErr error
	caughtUp := func(p []connector.FillProgress) bool {
		if time.Since(checked) < 200*time.Millisecond {
			return false
		}
		checked = time.Now()
		lag, ready, err := shadowLag(ctx, pool, offsets, cfg, plan, p)
		if err != nil {
			lagErr = err
			return true
		}
		progress.print(p, fmt.Sprintf(", %d behind the live table", lag))
		return ready && lag <= req.maxLag
	}
	if err := fill.Run(ctx, caughtUp); err != nil {
		return fmt.Errorf("fill %s (rerun the same command to resume): %w", shadow, err)
	}
	if lagErr != nil {
		return fmt.Errorf("fill %s (rerun the same command to resume): %w", shadow, lagErr)
	}
	progress.final(fill.Progress())
	fmt.Fprintln(out)
	t0 := time.Now()
	if err := swapShadow(ctx, conn, cfg, plan, fill, target, replaced, hooks); err != nil {
		return fmt.Errorf("swap %s into %s (rerun the same command to resume): %w", shadow, target, err)
	}
	fmt.Fprintf(out, "swapped the rebuilt table in as %s in %s; running instances re-claim its partitions and go on from where they stood\n",
		target, time.Since(t0).Round(time.Millisecond))
	hooks.Failpoints.Hit("swap-after-commit")
	reportFillDeadLetters(ctx, conn, cfg, plan, out)
	if err := sink.Drop(ctx, conn, replaced); err != nil {
		fmt.Fprintf(out, "the replaced table is left as %s: %v\n", replaced, err)
	}
	return nil
}

// shadowLag is how many records the shadow trails the live table by,
// summed over partitions, and whether it has read every record that
// existed when the rebuild planned it.
func shadowLag(ctx context.Context, db dedup.DB, offsets dedup.Offsets, cfg *config.Config, plan fillPlan, p []connector.FillProgress) (lag int64, ready bool, err error) {
	ready = true
	for _, f := range p {
		if f.Unapplied {
			// At a transaction the resolver has not applied: as far as it
			// can go before the swap, which ends it there (swapShadow).
			continue
		}
		if f.Next < plan.high[f.ID] {
			ready = false
		}
		c, err := offsets.Read(ctx, db, live(cfg, f.ID))
		if errors.Is(err, dedup.ErrNotClaimed) {
			continue // no instance applied it yet: nothing to trail
		}
		if err != nil {
			return 0, false, err
		}
		lag += max(c.NextOffset-f.Next, 0)
	}
	return lag, ready, nil
}

// swapShadow replaces target by the shadow in one transaction. It locks
// the instances' positions of the table's topics first, which waits for
// their batches in flight and holds off the next ones (their
// compare-and-set comes first), while readers still read the table; the
// fill then catches the shadow up to exactly those positions, so the
// swapped-in table holds the state the live one had and no reader sees a
// row go back. Then it locks the table (readers wait from here), renames,
// hands the shadow's ledger entries to the table, rewinds the instances'
// positions to the shadow's under a replay's epoch (they re-claim and go
// on), and forgets the fill's positions. Lock waits are bounded; a timeout
// or deadlock is retried.
func swapShadow(ctx context.Context, conn *pgx.Conn, cfg *config.Config, plan fillPlan, fill *connector.Fill, target, replaced config.TableName, hooks faults.Hooks) error {
	offsets := dedup.NewOffsets(cfg.Postgres.Schema)
	group := cfg.Kafka["group.id"]
	swap := func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
			return err
		}
		locked := plan.topics
		if cfg.Apply.Consistency == config.ConsistencyTransaction {
			// The resolver's position too: its apply transaction starts by
			// moving it, so this waits for an apply in flight and holds the
			// next one off. Which transactions are applied then stays put
			// while the shadow catches up, up to each partition's first
			// record of one that is not (connector.Fill.EndAtUnresolved);
			// the instances go back there, and the resolver applies such
			// transactions, once whole, to the table by its name: the
			// shadow's, once swapped.
			locked = append(slices.Clone(plan.topics), cfg.Apply.Transaction.Topic)
		}
		if err := offsets.Lock(ctx, tx, group, locked); err != nil {
			return err
		}
		ends := map[dedup.PartitionID]int64{}
		for _, p := range fill.Progress() {
			ends[p.ID] = p.Next // nothing to catch up where no instance applied yet
			c, err := offsets.Read(ctx, tx, live(cfg, p.ID))
			if errors.Is(err, dedup.ErrNotClaimed) {
				continue
			}
			if err != nil {
				return err
			}
			ends[p.ID] = c.NextOffset
		}
		fill.EndAt(ends)
		fill.EndAtUnresolved()
		if err := fill.Run(ctx, nil); err != nil {
			return fmt.Errorf("catch up with the live table: %w", err)
		}
		if err := sink.Swap(ctx, tx, target, plan.into, replaced); err != nil {
			return err
		}
		if err := dedup.NewLedgers(cfg.Postgres.Schema).Move(ctx, tx, plan.into.Schema+"."+plan.into.Name, target.Schema+"."+target.Name, plan.group, group); err != nil {
			return err
		}
		for _, id := range plan.ids {
			filled, err := offsets.Read(ctx, tx, id)
			if err != nil {
				return err
			}
			if _, err := offsets.Rewind(ctx, tx, live(cfg, id), filled.NextOffset, "rebuild:"+fillOwner()); err != nil {
				return err
			}
		}
		if err := offsets.DeleteGroup(ctx, tx, plan.group); err != nil {
			return err
		}
		hooks.Failpoints.Hit("swap-before-commit")
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, conn, swap)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 10 || !errors.As(err, &pgErr) || (pgErr.Code != "55P03" && pgErr.Code != "40P01") {
			return err
		}
	}
}
