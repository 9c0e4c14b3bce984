package dedup

import (
	"context"
	"fmt"
	"time"
)

// DefaultPruneChunk bounds the rows one pruning statement deletes: each
// chunk is its own short transaction, so pruning never holds many row locks
// or a long snapshot while batches are applied.
const DefaultPruneChunk = 10_000

// Retention says how long the ledgers keep their entries (the retention
// section of the configuration). An entry is pruned only once it is older
// than its retention by the database's clock; a zero retention keeps its
// ledger whole.
type Retention struct {
	Tombstones   time.Duration
	OutboxEvents time.Duration
	Chunk        int // rows per DELETE; DefaultPruneChunk when zero
}

// Pruned counts the entries one Prune removed.
type Pruned struct {
	Tombstones, OutboxEvents int64
	// MovedRows are key-move entries, pruned with the tombstones.
	MovedRows int64
	// TxResolved are applied source transactions (apply.consistency:
	// transaction), pruned with the tombstones: past the retention a
	// replay of a data partition stages their records again.
	TxResolved int64
	// TxSchemas are schemas of staged records (tx_schemas) no staged
	// record names, stored longer ago than the tombstones' retention.
	TxSchemas int64
}

// Ledgers prunes the tombstone and outbox-event ledgers of a schema.
//
// Pruning trades safety for space: a delete's tombstone older than the
// retention no longer stops a replayed older event from bringing the row
// back (I4), and a pruned event id no longer stops a re-published event.
// The retention must exceed the longest replay an operator may run.
type Ledgers struct {
	tombstones, outboxEvents, movedRows string // quoted, schema-qualified
	snapshots                           string // quoted, schema-qualified
	txResolved, txStaged, txSchemas     string // quoted, schema-qualified
}

// NewLedgers returns the ledgers of pgsink's tables in schema.
func NewLedgers(schema string) Ledgers {
	return Ledgers{
		tombstones:   TombstonesTable(schema),
		outboxEvents: OutboxEventsTable(schema),
		snapshots:    snapshotsTable(schema),
		movedRows:    MovedRowsTable(schema),
		txResolved:   NewTransactions(schema).resolved,
		txStaged:     NewTransactions(schema).staged,
		txSchemas:    NewTransactions(schema).schemas,
	}
}

// Prune deletes, chunk by chunk, the entries older than the retention. Pass
// a pool or a connection, not a transaction: each chunk must commit on its
// own to keep its locks short. Rows an apply transaction holds are skipped
// and left for the next run. The cutoff is taken once, from the database's
// clock, so an entry written during the run is never considered.
func (l Ledgers) Prune(ctx context.Context, db DB, r Retention) (Pruned, error) {
	chunk := r.Chunk
	if chunk <= 0 {
		chunk = DefaultPruneChunk
	}
	var p Pruned
	var err error
	if r.Tombstones > 0 {
		if p.Tombstones, err = l.prune(ctx, db, l.tombstones, "deleted_at", "target, key", r.Tombstones, chunk, "", ""); err != nil {
			return p, err
		}
		if p.MovedRows, err = l.prune(ctx, db, l.movedRows, "moved_at", "target, key, commit_lsn, lsn", r.Tombstones, chunk, "", ""); err != nil {
			return p, err
		}
		// A record of an applied transaction can be left staged (a
		// re-emission staged while the resolver applied its transaction):
		// it goes with the transaction's row, which until then marks it
		// as applied, so that it is never taken for a transaction
		// waiting for its END. Staged rows carry no commit position: those
		// of the xid go (see docs/transactions.md, Known limits).
		if p.TxResolved, err = l.prune(ctx, db, l.txResolved, "resolved_at", "group_id, tx_id, commit_lsn", r.Tombstones, chunk, l.txStaged, "group_id, tx_id"); err != nil {
			return p, err
		}
	}
	if r.Tombstones > 0 {
		if p.TxSchemas, err = l.pruneSchemas(ctx, db, r.Tombstones); err != nil {
			return p, err
		}
	}
	if r.OutboxEvents > 0 {
		if p.OutboxEvents, err = l.prune(ctx, db, l.outboxEvents, "applied_at", "target, event_id", r.OutboxEvents, chunk, "", ""); err != nil {
			return p, err
		}
	}
	return p, nil
}

// prune deletes table's entries older than retention by at, chunk by
// chunk; with also set, the rows of that table with the same alsoKey (a
// prefix of key) go in the same statement.
func (l Ledgers) prune(ctx context.Context, db DB, table, at, key string, retention time.Duration, chunk int, also, alsoKey string) (int64, error) {
	var cutoff time.Time
	if err := db.QueryRow(ctx, `SELECT now() - make_interval(secs => $1)`, retention.Seconds()).Scan(&cutoff); err != nil {
		return 0, fmt.Errorf("dedup: prune %s: read the clock: %w", table, err)
	}
	// The index on the timestamp finds the oldest entries; SKIP LOCKED
	// leaves those of running batches alone instead of waiting for them.
	stmt := `DELETE FROM ` + table + ` WHERE (` + key + `) IN (
		SELECT ` + key + ` FROM ` + table + ` WHERE ` + at + ` < $1
		 ORDER BY ` + at + ` LIMIT $2 FOR UPDATE SKIP LOCKED)`
	if also != "" {
		stmt = `WITH gone AS (` + stmt + ` RETURNING ` + key + `),
		also AS (DELETE FROM ` + also + ` a WHERE (` + alsoKey + `) IN (SELECT ` + alsoKey + ` FROM gone))
		SELECT count(*) FROM gone`
	}
	var total int64
	for {
		var n int64
		if also == "" {
			tag, err := db.Exec(ctx, stmt, cutoff, chunk)
			if err != nil {
				return total, fmt.Errorf("dedup: prune %s: %w", table, err)
			}
			n = tag.RowsAffected()
		} else if err := db.QueryRow(ctx, stmt, cutoff, chunk).Scan(&n); err != nil {
			return total, fmt.Errorf("dedup: prune %s and %s: %w", table, also, err)
		}
		total += n
		if n < int64(chunk) {
			return total, nil
		}
	}
}

// pruneSchemas deletes the schemas of tx_schemas no staged record names,
// stored longer ago than retention (at least minSchemaRetention). It takes
// no lock a stager waits for: a stager marks a stale schema it names as in
// use (Transactions.queueSchemas) under the schema row's lock, so the
// DELETE, meeting that row, waits for the stager to commit and re-checks
// the row's stored_at, now recent, and keeps it; a schema a stager found
// recent is younger than minSchemaRetention until that stager commits.
// The staged rows' schemas are gathered distinct first: few schemas name
// many rows, and a NOT IN over every row's digest could not be hashed.
func (l Ledgers) pruneSchemas(ctx context.Context, db DB, retention time.Duration) (int64, error) {
	retention = max(retention, minSchemaRetention)
	var stale bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+l.txSchemas+` WHERE stored_at < now() - make_interval(secs => $1))`,
		retention.Seconds()).Scan(&stale); err != nil {
		return 0, fmt.Errorf("dedup: prune %s: %w", l.txSchemas, err)
	}
	if !stale {
		return 0, nil
	}
	tag, err := db.Exec(ctx, `DELETE FROM `+l.txSchemas+` sc WHERE sc.stored_at < now() - make_interval(secs => $1)
		AND sc.digest NOT IN (SELECT s.key_schema FROM `+l.txStaged+` s WHERE s.key_schema IS NOT NULL
		                      UNION SELECT s.value_schema FROM `+l.txStaged+` s WHERE s.value_schema IS NOT NULL)`, retention.Seconds())
	if err != nil {
		return 0, fmt.Errorf("dedup: prune %s: %w", l.txSchemas, err)
	}
	return tag.RowsAffected(), nil
}

// PruneEvery runs Prune every interval until ctx ends, handing each result
// to report (which may log it or count it); an error does not stop the loop,
// the next run retries.
func (l Ledgers) PruneEvery(ctx context.Context, db DB, r Retention, interval time.Duration, report func(Pruned, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p, err := l.Prune(ctx, db, r)
			report(p, err)
		}
	}
}
