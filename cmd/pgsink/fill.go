package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/connector"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// fillPlan is what a fill (`replay --into`, `replay --rebuild --online`)
// consumes and fills.
type fillPlan struct {
	source, into config.TableName
	group        string // the fill's offsets group
	topics       []string
	ids          []dedup.PartitionID // of the fill's group
	low, high    map[dedup.PartitionID]int64
}

// planFill resolves the table's topics and reads their watermarks. It
// refuses when Kafka no longer holds the beginning of a topic: what is
// checkable is that the topic still starts at offset 0, or, where the
// state of now is all that is asked (history false), that it is compacted
// only (each key's latest record kept). Not checkable: that the records
// at offset 0 are the table's first (a connector started with
// snapshot.mode never over a populated table never sent the older rows).
func planFill(ctx context.Context, cfg *config.Config, in *connector.Inspector, table string, into config.TableName, history bool) (fillPlan, error) {
	topics, targets, err := replayTopics(cfg, in, replayRequest{table: table, partition: -1})
	if err != nil {
		return fillPlan{}, err
	}
	plan := fillPlan{source: targets[0], into: into, topics: topics, group: dedup.FillGroup(cfg.Kafka["group.id"], into.String()),
		low: map[dedup.PartitionID]int64{}, high: map[dedup.PartitionID]int64{}}
	if plan.source == into {
		return fillPlan{}, fmt.Errorf("--into %s is the table itself", into)
	}
	for _, topic := range topics {
		policy, err := in.CleanupPolicy(ctx, topic)
		if err != nil {
			return fillPlan{}, err
		}
		compacted := strings.Contains(policy, "compact")
		if history && compacted {
			return fillPlan{}, fmt.Errorf("%s is compacted (cleanup.policy=%s): it holds each key's latest record, not its history, so no earlier state can be rebuilt from it", topic, policy)
		}
		parts, err := in.Partitions(topic)
		if err != nil {
			return fillPlan{}, err
		}
		for _, p := range parts {
			low, high, err := in.Watermarks(topic, p)
			if err != nil {
				return fillPlan{}, err
			}
			if low > 0 && !(policy == "compact" && !history) {
				return fillPlan{}, fmt.Errorf("%s[%d]: Kafka no longer holds the beginning of the topic (its earliest offset is %d, cleanup.policy=%s): a table rebuilt from it would lack the rows whose records are gone", topic, p, low, policy)
			}
			id := dedup.PartitionID{Group: plan.group, Topic: topic, Partition: p}
			plan.ids = append(plan.ids, id)
			plan.low[id], plan.high[id] = low, high
		}
	}
	return plan, nil
}

// partitions are the fill's partitions: bounded, each ends at the high
// watermark read when planned; otherwise followed until stopped.
func (plan fillPlan) partitions(bounded bool) []connector.FillPartition {
	parts := make([]connector.FillPartition, len(plan.ids))
	for i, id := range plan.ids {
		parts[i] = connector.FillPartition{ID: id, End: -1}
		if bounded {
			parts[i].End = plan.high[id]
		}
	}
	return parts
}

// live is the instances' partition a fill's partition mirrors.
func live(cfg *config.Config, id dedup.PartitionID) dedup.PartitionID {
	id.Group = cfg.Kafka["group.id"]
	return id
}

// prepareFill creates the filled table with the source's definition and
// the fill's positions at the start of each partition, in one transaction
// (a fill killed before it left nothing). A table and positions both left
// by a killed fill are resumed (true). A table without positions is no
// fill's: refused, unless ours to replace (a shadow), then dropped and made
// again; positions without a table are forgotten.
func prepareFill(ctx context.Context, conn *pgx.Conn, cfg *config.Config, plan fillPlan, ours bool) (resumed bool, err error) {
	offsets := dedup.NewOffsets(cfg.Postgres.Schema)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{plan.into.Schema, plan.into.Name}.Sanitize()).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up %s: %w", plan.into, err)
	}
	stored, err := offsets.List(ctx, conn, plan.group)
	if err != nil {
		return false, err
	}
	if exists && len(stored) > 0 {
		return true, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			held := map[dedup.PartitionID]bool{}
			for _, s := range stored {
				held[s.PartitionID] = true
				if low := plan.low[s.PartitionID]; s.NextOffset < low {
					return fmt.Errorf("%s: the killed fill stands at offset %d, which Kafka no longer holds (earliest %d): drop %s and start again", s.PartitionID, s.NextOffset, low, plan.into)
				}
			}
			for _, id := range plan.ids {
				if !held[id] { // a partition added since the fill began
					if _, err := offsets.Claim(ctx, tx, id, plan.low[id], fillOwner()); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	if exists && !ours {
		return false, fmt.Errorf("%s exists: drop it or choose another --into", plan.into)
	}
	return false, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := sink.Drop(ctx, tx, plan.into); err != nil {
			return err
		}
		if err := offsets.DeleteGroup(ctx, tx, plan.group); err != nil {
			return err
		}
		if err := sink.CreateLike(ctx, tx, plan.into, plan.source); err != nil {
			return err
		}
		// Entries a former table of this name left would refuse deletes
		// and events the fill must apply.
		if err := dedup.NewLedgers(cfg.Postgres.Schema).Forget(ctx, tx, plan.into.Schema+"."+plan.into.Name); err != nil {
			return err
		}
		for _, id := range plan.ids {
			if _, err := offsets.Claim(ctx, tx, id, plan.low[id], fillOwner()); err != nil {
				return err
			}
		}
		return nil
	})
}

func fillOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// fillProgress prints a fill's progress line: records applied against the
// high watermarks read at its start, and how many partitions stand at a
// source transaction the resolver has not applied.
type fillProgress struct {
	out   io.Writer
	plan  fillPlan
	start time.Time
	last  time.Time
	// base is what was applied at the first report: a resumed fill's rate
	// counts what this run applied.
	base    int64
	counted bool
}

// final prints the progress line once more, whenever the last one was.
func (p *fillProgress) final(progress []connector.FillProgress) {
	p.last = time.Time{}
	p.print(progress, "")
}

func (p *fillProgress) print(progress []connector.FillProgress, extra string) {
	if p.counted && time.Since(p.last) < time.Second {
		return
	}
	p.last = time.Now()
	var done, total int64
	for _, f := range progress {
		low, high := p.plan.low[f.ID], p.plan.high[f.ID]
		total += high - low
		done += min(max(f.Next-low, 0), high-low)
	}
	if !p.counted {
		p.base, p.counted = done, true
	}
	rate := float64(done-p.base) / max(time.Since(p.start).Seconds(), 0.001)
	if n := unapplied(progress); n > 0 {
		// Waiting there (an online rebuild) or ended there (a copy).
		extra += fmt.Sprintf(" (%d partitions at a transaction the resolver has not applied)", n)
	}
	fmt.Fprintf(p.out, "\rfilled %d/%d records (%.0f%%), %.0f records/s%s   ", done, total, 100*float64(done)/float64(max(total, 1)), rate, extra)
}

// followResolver makes a fill keep source transactions whole under
// apply.consistency: transaction (docs/transactions.md, Replay): it takes a
// record of a source transaction only once the instances' resolver has
// applied the transaction. An online rebuild follows the resolver as it
// goes (cut nil: its partitions wait for it, and its swap ends them where
// it stands); a copy takes what the resolver had applied at cut, read
// before the copy's high watermarks, so that every record of those
// transactions lies below them.
func followResolver(cfg *config.Config, opts *connector.FillOptions, cut *dedup.TxCut) {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return
	}
	opts.TxGroup = cfg.Kafka["group.id"]
	opts.TxCut = cut
}

// readTxCut reads what the instances' resolver has applied now, for a copy
// under apply.consistency: transaction; nil in partition mode.
func readTxCut(ctx context.Context, conn *pgx.Conn, cfg *config.Config) (*dedup.TxCut, error) {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil, nil
	}
	cut, err := dedup.NewTransactions(cfg.Postgres.Schema).CutNow(ctx, conn, cfg.Kafka["group.id"])
	if err != nil {
		return nil, err
	}
	return &cut, nil
}

// unapplied counts the fill's partitions that stand at a record of a
// source transaction the resolver has not applied (waiting there, or, for
// a copy, ended there).
func unapplied(progress []connector.FillProgress) int {
	n := 0
	for _, f := range progress {
		if f.Unapplied {
			n++
		}
	}
	return n
}

// formatLSN prints an LSN as PostgreSQL does, and as --until lsn: reads it.
func formatLSN(lsn int64) string { return fmt.Sprintf("%X/%X", uint64(lsn)>>32, uint32(lsn)) }

// reportFillDeadLetters says how many records the fill could not apply:
// they are in the dead-letter table under the fill's group.
func reportFillDeadLetters(ctx context.Context, conn *pgx.Conn, cfg *config.Config, plan fillPlan, out io.Writer) {
	counts, err := dedup.NewDeadLetters(cfg.Postgres.Schema).Count(ctx, conn, plan.group)
	if err != nil {
		fmt.Fprintf(out, "could not count the fill's dead letters: %v\n", err)
		return
	}
	for _, c := range counts {
		fmt.Fprintf(out, "%d records of %s could not be applied: in the dead letters under group %q\n", c.Count, c.Topic, plan.group)
	}
}

// runFill runs `replay --into` or `replay --rebuild --online` until done,
// or until SIGTERM/SIGINT, which stops it where it stands (resumable).
func runFill(cfg *config.Config, req replayRequest, online bool, stdout, stderr io.Writer) int {
	log, err := newLogger(string(cfg.Log.Format), string(cfg.Log.Level), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pgsink replay: %v\n", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if online {
		err = replayOnline(ctx, cfg, req, stdout, log)
	} else {
		err = replayInto(ctx, cfg, req, stdout, log)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgsink replay: %v\n", err)
		return 1
	}
	return 0
}
