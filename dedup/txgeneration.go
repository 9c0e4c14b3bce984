package dedup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Staging that survives a reset (apply.transaction.staging: unlogged,
// docs/transactions.md "Unlogged staging"). PostgreSQL empties an UNLOGGED
// tx_staged at crash recovery, and a promoted standby holds none of its
// rows, while the stagers' offsets, logged, say their records are staged.
// tx_staging_marker has tx_staged's persistence (SetStagingPersistence
// alters both in one transaction, MatchMarkerPersistence repairs a marker
// that differs): unlogged, it is emptied with tx_staged, and its generation
// against tx_staging_generation (logged) tells a reset; logged, a crash
// keeps both, and no partition rewinds for it. A partition records in
// tx_staging_partitions the generation each staging transaction checked;
// one recorded under an older generation than the current may have lost
// staged records, and is rewound to its frontier. The checks run whatever
// the persistence: a marker emptied by hand is a reset too.

// ErrStagingReset is the error of a staging or resolver transaction whose
// check of the staging marker failed: tx_staged was emptied (a crash of the
// target, a failover), or the generation moved on since the caller synced
// (SyncGeneration). The transaction is rolled back; nothing was staged.
var ErrStagingReset = errors.New("the staging marker does not match the generation: tx_staged may have been reset by a crash of the target or a failover")

// stagingResetText is the text PostgreSQL raises for a failed marker
// check, in the server's log as well.
const stagingResetText = "pgsink: staging marker mismatch"

// Beginner opens a transaction: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// SyncGeneration returns the staging generation, first moving it on when
// the marker does not match it (reset true): every partition that staged
// under an older one must then rewind (StagingOf, RewindStaging). Under the
// generation's row lock, so that several callers that see one reset at once
// move it on once.
func (t Transactions) SyncGeneration(ctx context.Context, db interface {
	DB
	Beginner
}) (gen int64, reset bool, err error) {
	// Read first without the lock: what every idle partition does every
	// few seconds must not lock (and write) the one row they share.
	var marker *int64
	if err := db.QueryRow(ctx, `SELECT g.generation, m.generation FROM `+t.generation+` g LEFT JOIN `+t.marker+` m ON true`).Scan(&gen, &marker); err != nil {
		return 0, false, fmt.Errorf("dedup: check the staging marker: %w", err)
	}
	if marker != nil && *marker == gen {
		return gen, false, nil
	}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT generation FROM `+t.generation+` FOR UPDATE`).Scan(&gen); err != nil {
			return err
		}
		// A statement of its own, after the lock: it sees a marker a
		// caller that held the lock before wrote.
		var marker int64
		if err := tx.QueryRow(ctx, `SELECT generation FROM `+t.marker).Scan(&marker); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if marker == gen { // moved on by the caller that held the lock before
			return nil
		}
		gen, reset = gen+1, true
		if _, err := tx.Exec(ctx, `UPDATE `+t.generation+` SET generation = $1`, gen); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+t.marker+` (generation) VALUES ($1)
			ON CONFLICT (id) DO UPDATE SET generation = excluded.generation`, gen)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("dedup: check the staging marker: %w", err)
	}
	return gen, reset, nil
}

// PartitionStaging is what a data partition staged under, as
// tx_staging_partitions and tx_frontier keep it.
type PartitionStaging struct {
	// Generation is the one its latest staging transaction checked; 0
	// when the partition never staged.
	Generation int64
	// RewindTo is where it reads again from after a reset: past
	// everything of it the resolver applied (tx_frontier's offset + 1),
	// or, nothing of it applied yet, the lowest offset it staged.
	RewindTo int64
}

// StagingOf returns what a data partition staged under.
func (t Transactions) StagingOf(ctx context.Context, db DB, id PartitionID) (PartitionStaging, error) {
	var s PartitionStaging
	err := db.QueryRow(ctx, `SELECT p.generation, coalesce(f.kafka_offset + 1, p.first_offset)
		FROM `+t.partitions+` p LEFT JOIN `+t.frontier+` f USING (group_id, topic, partition)
		WHERE p.group_id = $1 AND p.topic = $2 AND p.partition = $3`, id.Group, id.Topic, id.Partition).Scan(&s.Generation, &s.RewindTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return PartitionStaging{}, nil
	}
	if err != nil {
		return PartitionStaging{}, fmt.Errorf("partition %s: read its staging generation: %w", id, err)
	}
	return s, nil
}

// RewindStaging moves a data partition that staged under an older
// generation to gen: its position back to to when it is past it, through
// the claim's compare-and-set (its epoch and position: a *FencedError or
// *PositionMovedError when the row is not the claim's), which raises the
// epoch as a replay's rewind does, in the transaction
// that records gen for it, so that a crash in between rewinds it again
// rather than not at all. A position at or below to is checked against
// the row all the same: a former owner's stale claim below to must not
// record gen for a partition whose owner staged past to what the reset
// lost, or the owner would find it synced and never stage those records
// again. It reports whether the position moved; on success c holds the
// new position and epoch.
//
// within, when set, runs in that transaction once the position moved
// (from c.NextOffset before to to): the fault suite's apply audit forgets
// there the records the partition will read again.
func (t Transactions) RewindStaging(ctx context.Context, db Beginner, c *Claim, gen, to int64, within func(ctx context.Context, tx pgx.Tx, from, to int64) error) (moved bool, err error) {
	epoch := c.Epoch
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if to >= c.NextOffset {
			if err := t.offsets.hold(ctx, tx, *c); err != nil {
				return err
			}
		} else {
			var err error
			if epoch, err = t.offsets.rewind(ctx, tx, *c, to); err != nil {
				return err
			}
			moved = true
			if within != nil {
				if err := within(ctx, tx, c.NextOffset, to); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, `UPDATE `+t.partitions+` SET generation = $4
			WHERE group_id = $1 AND topic = $2 AND partition = $3 AND generation < $4`, c.Group, c.Topic, c.Partition, gen)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("partition %s: rewind to offset %d after a reset of the staging table: %w", c.PartitionID, to, err)
	}
	if moved {
		c.NextOffset, c.Epoch = to, epoch
	}
	return moved, nil
}

// QueueStagingCheck queues into b, a staging transaction of the partition
// id behind its offsets compare-and-set, the check that the marker is at
// gen, and records gen (and first, the lowest offset the transaction
// stages) for the partition. A marker that is not at gen fails the
// statement, which aborts the transaction, and its error is
// ErrStagingReset: the caller syncs the generation and rewinds.
func (t Transactions) QueueStagingCheck(b *pgx.Batch, id PartitionID, gen, first int64) {
	// The failing branch depends on count(*), or the planner would
	// evaluate (and raise) it whatever the count (see QueueAdvance).
	b.Queue(`WITH m AS (SELECT 1 FROM `+t.marker+` WHERE generation = $4),
	p AS (INSERT INTO `+t.partitions+` AS p (group_id, topic, partition, generation, first_offset)
	      SELECT $1, $2, $3, $4, $5 FROM m
	      ON CONFLICT (group_id, topic, partition) DO UPDATE
	         SET generation = excluded.generation, first_offset = least(p.first_offset, excluded.first_offset)
	       WHERE p.generation <> excluded.generation OR p.first_offset > excluded.first_offset)
SELECT CASE count(*) WHEN 1 THEN 1 ELSE ('`+stagingResetText+` (' || count(*) || ')')::integer END FROM m`,
		id.Group, id.Topic, id.Partition, gen, first).Fn = resetCheck
}

// QueueGenerationCheck queues into b, a transaction of a data partition
// that stages nothing, the check that the marker is at gen: a partition
// busy with records outside source transactions (an incremental snapshot)
// runs no idle check, and must still see a reset that took what it staged
// before. It fails like QueueStagingCheck's.
func (t Transactions) QueueGenerationCheck(b *pgx.Batch, gen int64) {
	b.Queue(`SELECT CASE count(*) WHEN 1 THEN 1 ELSE ('`+stagingResetText+` (' || count(*) || ')')::integer END
		FROM `+t.marker+` WHERE generation = $1`, gen).Fn = resetCheck
}

// QueueMarkerCheck queues into b, the resolver's apply transaction, the
// check that the marker matches the generation: a resolver does not commit
// against a staging table emptied since the stagers last synced (the
// counts it verifies would not tell a transaction none of whose records
// are staged yet from one whose records were lost).
func (t Transactions) QueueMarkerCheck(b *pgx.Batch) {
	b.Queue(`SELECT CASE count(*) WHEN 1 THEN 1 ELSE ('` + stagingResetText + ` (' || count(*) || ')')::integer END
		FROM ` + t.marker + ` m JOIN ` + t.generation + ` g USING (generation)`).Fn = resetCheck
}

func resetCheck(br pgx.BatchResults) error {
	_, err := br.Exec()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22P02" && strings.Contains(pgErr.Message, stagingResetText) {
		return ErrStagingReset
	}
	if err != nil {
		return fmt.Errorf("dedup: check the staging marker: %w", err)
	}
	return nil
}

// Persistence is whether tx_staged and tx_staging_marker are UNLOGGED.
type Persistence struct {
	StagedUnlogged, MarkerUnlogged bool
}

// Safe reports whether a crash that empties tx_staged empties the marker
// too: an unlogged tx_staged with a logged marker loses staged records
// where no partition sees it.
func (p Persistence) Safe() bool { return p.MarkerUnlogged || !p.StagedUnlogged }

// StagingPersistence reads the persistence of tx_staged and of the marker.
func (t Transactions) StagingPersistence(ctx context.Context, db DB) (Persistence, error) {
	var p Persistence
	if err := db.QueryRow(ctx, `SELECT (SELECT relpersistence = 'u' FROM pg_class WHERE oid = $1::regclass),
		(SELECT relpersistence = 'u' FROM pg_class WHERE oid = $2::regclass)`, t.staged, t.marker).Scan(&p.StagedUnlogged, &p.MarkerUnlogged); err != nil {
		return Persistence{}, fmt.Errorf("dedup: read the persistence of tx_staged and tx_staging_marker: %w", err)
	}
	return p, nil
}

// OtherTransactionGroups lists the groups other than group that last ran
// in transaction mode: they stage into the same tx_staged.
func (t Transactions) OtherTransactionGroups(ctx context.Context, db Querier, group string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT group_id FROM `+t.modes+` WHERE consistency = 'transaction' AND group_id <> $1 ORDER BY group_id`, group)
	if err != nil {
		return nil, fmt.Errorf("dedup: list the groups in transaction mode: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("dedup: list the groups in transaction mode: %w", err)
	}
	return groups, nil
}

// SetStagingPersistence makes tx_staged and the marker UNLOGGED or LOGGED,
// in one transaction: the marker must be emptied by whatever empties
// tx_staged, and need not be otherwise (a logged marker in a crash is not a
// reset). ALTER TABLE rewrites the table under an ACCESS EXCLUSIVE lock,
// which waits behind every stager's and the resolver's transaction and
// stops them meanwhile: lockTimeout bounds the wait, and the call fails
// rather than queue the whole group behind it. Both tables are locked
// first, tx_staged then the marker, the order MatchMarkerPersistence takes
// them in.
func (t Transactions) SetStagingPersistence(ctx context.Context, db Beginner, unlogged bool, lockTimeout string) error {
	to := persistenceWord(unlogged)
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, lockTimeout); err != nil {
			return err
		}
		for _, stmt := range []string{
			`LOCK TABLE ` + t.staged + `, ` + t.marker + ` IN ACCESS EXCLUSIVE MODE`,
			`ALTER TABLE ` + t.staged + ` SET ` + to,
			`ALTER TABLE ` + t.marker + ` SET ` + to,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dedup: make tx_staged and tx_staging_marker %s: %w", strings.ToLower(to), err)
	}
	return nil
}

// SetPersistenceStatement is SetStagingPersistence's change as an operator
// runs it by hand, quoted as pgsink quotes it.
func (t Transactions) SetPersistenceStatement(unlogged bool) string {
	to := persistenceWord(unlogged)
	return `BEGIN; ALTER TABLE ` + t.staged + ` SET ` + to + `; ALTER TABLE ` + t.marker + ` SET ` + to + `; COMMIT;`
}

func persistenceWord(unlogged bool) string {
	if unlogged {
		return "UNLOGGED"
	}
	return "LOGGED"
}

// MarkerChange is what MatchMarkerPersistence did.
type MarkerChange int

const (
	// MarkerMatched: the marker was as tx_staged already.
	MarkerMatched MarkerChange = iota
	// MarkerLogged: tx_staged is logged and the marker was not; a crash
	// no longer counts as a reset.
	MarkerLogged
	// MarkerReset: tx_staged is unlogged and the marker was logged (an
	// ALTER of tx_staged alone): a crash meanwhile may have emptied
	// tx_staged and kept the marker, so the marker is made unlogged and
	// emptied, a reset every partition that staged sees and rewinds for.
	MarkerReset
)

// MatchMarkerPersistence makes the marker's persistence tx_staged's, under
// a lock on tx_staged that keeps it from changing meanwhile (one staging
// does not wait for; the marker's ALTER, which staging does wait for, waits
// at most lockTimeout itself).
func (t Transactions) MatchMarkerPersistence(ctx context.Context, db Beginner, lockTimeout string) (MarkerChange, error) {
	change := MarkerMatched
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, lockTimeout); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE `+t.staged+` IN ACCESS SHARE MODE`); err != nil {
			return err
		}
		p, err := t.StagingPersistence(ctx, tx)
		if err != nil {
			return err
		}
		if p.MarkerUnlogged == p.StagedUnlogged {
			return nil
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+t.marker+` SET `+persistenceWord(p.StagedUnlogged)); err != nil {
			return err
		}
		if p.Safe() {
			change = MarkerLogged
			return nil
		}
		change = MarkerReset
		_, err = tx.Exec(ctx, `DELETE FROM `+t.marker)
		return err
	})
	if err != nil {
		return MarkerMatched, fmt.Errorf("dedup: make tx_staging_marker as tx_staged: %w", err)
	}
	return change, nil
}
