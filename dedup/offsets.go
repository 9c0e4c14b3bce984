package dedup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the offset store needs of a connection, pool or transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Querier is what a listing needs of a connection, pool or transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// PartitionID names one consumed Kafka partition of one consumer group.
type PartitionID struct {
	Group     string
	Topic     string
	Partition int32
}

func (p PartitionID) String() string { return fmt.Sprintf("%s/%s[%d]", p.Group, p.Topic, p.Partition) }

// Claim is a partition's ownership: the epoch this owner holds and the next
// offset it must apply. Every batch it commits moves NextOffset forward.
type Claim struct {
	PartitionID
	Epoch      int64
	NextOffset int64
	Owner      string
}

// FencedError reports that another owner claimed the partition since this
// one did: the holder of the old epoch must stop applying it (I2).
type FencedError struct {
	Partition PartitionID
	Epoch     int64 // the epoch the caller held
	Current   int64 // the epoch stored now
	Owner     string
}

// Lost reports whether the stored epoch is below the one the caller held.
// No claim lowers an epoch: the target lost the caller's claim and what it
// committed under it (a failover to a standby that was behind, a restore
// from a backup), and no other instance holds the partition by this row.
func (e *FencedError) Lost() bool { return e.Current < e.Epoch }

func (e *FencedError) Error() string {
	return fmt.Sprintf("partition %s: fenced: epoch %d was superseded by epoch %d of %q", e.Partition, e.Epoch, e.Current, e.Owner)
}

// PositionMovedError reports that the stored position is not the one the
// caller expected although it still holds the epoch: the caller's view is
// stale, or, behind it, the target lost commits the caller made (a failover
// to a standby that was behind, a restore). The caller seeks to Stored and
// continues: the row is what the target holds.
type PositionMovedError struct {
	Partition PartitionID
	Expected  int64
	Stored    int64
}

func (e *PositionMovedError) Error() string {
	return fmt.Sprintf("partition %s: position moved: expected next offset %d, stored %d", e.Partition, e.Expected, e.Stored)
}

// ErrNotClaimed is returned for a partition that has no offsets row.
var ErrNotClaimed = errors.New("partition has no stored offset: claim it first")

// Offsets stores partition positions in the offsets table of a schema.
type Offsets struct {
	table string // quoted, schema-qualified
}

// NewOffsets returns the store for pgsink's tables in schema.
func NewOffsets(schema string) Offsets {
	return Offsets{table: pgx.Identifier{schema, "offsets"}.Sanitize()}
}

// Claim takes ownership of a partition for owner: it raises the epoch (or
// creates the row at start, epoch 1) and returns where to resume. It waits
// behind any transaction of a former owner that still holds the row, which
// is what makes a zombie's in-flight batch either commit before the claim
// or fail after it. Run it outside any batch transaction.
func (o Offsets) Claim(ctx context.Context, db DB, p PartitionID, start int64, owner string) (Claim, error) {
	if start < 0 {
		return Claim{}, fmt.Errorf("partition %s: start offset %d must be a real offset (resolve earliest/latest first)", p, start)
	}
	c := Claim{PartitionID: p, Owner: owner}
	err := db.QueryRow(ctx, `INSERT INTO `+o.table+` AS o (group_id, topic, partition, next_offset, epoch, owner)
		VALUES ($1, $2, $3, $4, 1, $5)
		ON CONFLICT (group_id, topic, partition) DO UPDATE
		   SET epoch = o.epoch + 1, owner = excluded.owner, updated_at = now(), stopped_reason = NULL, stopped_at = NULL
		RETURNING next_offset, epoch`, p.Group, p.Topic, p.Partition, start, owner).Scan(&c.NextOffset, &c.Epoch)
	if err != nil {
		return Claim{}, fmt.Errorf("partition %s: claim: %w", p, err)
	}
	return c, nil
}

// Advance moves the claim's position to next inside tx, the transaction
// that applies the records below next. (The sink pipelines the same
// compare-and-set with its writes: QueueAdvance.) It must be the transaction's first
// statement: the row lock it takes serialises the partition's writers. On
// success it updates c.NextOffset; when the row does not match the claim it
// returns a *FencedError or a *PositionMovedError and the caller rolls back.
func (o Offsets) Advance(ctx context.Context, tx DB, c *Claim, next int64) error {
	if next < c.NextOffset {
		return fmt.Errorf("partition %s: refusing to move the offset backwards from %d to %d", c.PartitionID, c.NextOffset, next)
	}
	tag, err := tx.Exec(ctx, o.advanceSQL(), next, c.Group, c.Topic, c.Partition, c.Epoch, c.NextOffset, nil)
	if err != nil {
		return fmt.Errorf("partition %s: advance offset: %w", c.PartitionID, err)
	}
	if tag.RowsAffected() == 1 {
		c.NextOffset = next
		return nil
	}
	stored, err := o.Read(ctx, tx, c.PartitionID)
	if err != nil {
		return err
	}
	return o.mismatch(*c, stored)
}

// ErrNotAdvanced is the error of the compare-and-set QueueAdvance queued
// when the offsets row does not match the claim: the transaction is aborted
// and Mismatch says why.
var ErrNotAdvanced = errors.New("offsets row does not match the claim")

// advanceMismatch is the text of the error PostgreSQL raises for a
// compare-and-set that matched no row: it ends up in the server's log, so it
// says what happened.
const advanceMismatch = "pgsink: offset compare-and-set matched no row"

// QueueAdvance queues Advance's compare-and-set into b, a pipelined
// transaction: BEGIN before it, the batch's writes and possibly its COMMIT
// after it, all sent at once. Nothing of the pipeline may then run past a
// row that does not match, so the statement fails instead of reporting 0
// rows, which aborts the transaction (and skips its COMMIT), and its error
// is ErrNotAdvanced. The caller rolls back and asks Mismatch for the
// *FencedError or *PositionMovedError. On success c.NextOffset is next
// once the transaction commits; QueueAdvance does not change c.
//
// sourceTs is the source commit time of the newest change the transaction
// applies; it is stored with the position, with the time it was applied,
// for Stored.BehindSource. The zero time (a batch of tombstones, or of
// records that carry no source time) keeps the stored one.
func (o Offsets) QueueAdvance(b *pgx.Batch, c Claim, next int64, sourceTs time.Time) error {
	if next < c.NextOffset {
		return fmt.Errorf("partition %s: refusing to move the offset backwards from %d to %d", c.PartitionID, c.NextOffset, next)
	}
	// The failing branch must not be a constant, or the planner would
	// evaluate (and raise) it whatever the count: count(*) makes it
	// depend on the row the UPDATE matched.
	b.Queue(`WITH moved AS (`+o.advanceSQL()+` RETURNING 1)
SELECT CASE count(*) WHEN 1 THEN 1 ELSE ('`+advanceMismatch+` (' || count(*) || ')')::integer END FROM moved`,
		next, c.Group, c.Topic, c.Partition, c.Epoch, c.NextOffset, nullTime(sourceTs)).Fn = func(br pgx.BatchResults) error {
		_, err := br.Exec()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "22P02" && strings.Contains(pgErr.Message, advanceMismatch) {
			return fmt.Errorf("partition %s: %w", c.PartitionID, ErrNotAdvanced)
		}
		if err != nil {
			return fmt.Errorf("partition %s: advance offset: %w", c.PartitionID, err)
		}
		return nil
	}
	return nil
}

// QueueLockBehind queues, before QueueAdvance's compare-and-set, a lock
// of the claim's row that waits for a transaction of the same partition
// still in flight (apply.pipeline). The compare-and-set alone would not
// wait: its row, as its snapshot shows it, is not yet at the position it
// expects, so it matches nothing and fails at once. Behind this lock the
// compare-and-set, a statement of its own and so with a snapshot taken
// after the lock was granted, sees the row as the transaction before left
// it: at its end if it committed, at its start if it rolled back.
func (o Offsets) QueueLockBehind(b *pgx.Batch, c Claim) {
	b.Queue(`SELECT 1 FROM `+o.table+` WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE`,
		c.Group, c.Topic, c.Partition)
}

// Mismatch reads the stored row of a claim whose compare-and-set failed
// (ErrNotAdvanced) and returns the *FencedError or *PositionMovedError that
// describes it. Run it after the rollback.
func (o Offsets) Mismatch(ctx context.Context, db DB, c Claim) error {
	stored, err := o.Read(ctx, db, c.PartitionID)
	if err != nil {
		return err
	}
	if stored.Epoch == c.Epoch && stored.NextOffset == c.NextOffset {
		// The row matches now: it did not when the statement ran, so a
		// concurrent writer moved it and back, which only a replay does.
		return &PositionMovedError{Partition: c.PartitionID, Expected: c.NextOffset, Stored: stored.NextOffset}
	}
	return o.mismatch(c, stored)
}

// advanceSQL is the compare-and-set of Advance and QueueAdvance: $1 the new
// position; $2–$4 the partition; $5 and $6 the claim's epoch and position;
// $7 the source commit time of the newest change applied, or NULL to keep
// the stored one.
func (o Offsets) advanceSQL() string {
	return `UPDATE ` + o.table + ` SET next_offset = $1, updated_at = now(),
       source_ts = coalesce($7::timestamptz, source_ts),
       source_applied_at = CASE WHEN $7::timestamptz IS NULL THEN source_applied_at ELSE now() END
     WHERE group_id = $2 AND topic = $3 AND partition = $4 AND epoch = $5 AND next_offset = $6`
}

// rewind moves the claim's position back to to inside tx, under a new
// epoch, as a replay's rewind does: a position goes back only with the
// epoch forward, so that a transaction of the old one still in flight
// cannot commit past it (I2). It returns the new epoch, or the
// *FencedError or *PositionMovedError of a row that is not the claim's.
// For a rewind after a reset of the staging table (RewindStaging).
func (o Offsets) rewind(ctx context.Context, tx DB, c Claim, to int64) (epoch int64, err error) {
	err = tx.QueryRow(ctx, `UPDATE `+o.table+` SET next_offset = $1, epoch = epoch + 1, updated_at = now()
		WHERE group_id = $2 AND topic = $3 AND partition = $4 AND epoch = $5 AND next_offset = $6 RETURNING epoch`,
		to, c.Group, c.Topic, c.Partition, c.Epoch, c.NextOffset).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		stored, err := o.Read(ctx, tx, c.PartitionID)
		if err != nil {
			return 0, err
		}
		return 0, o.mismatch(c, stored)
	}
	if err != nil {
		return 0, fmt.Errorf("partition %s: rewind to offset %d: %w", c.PartitionID, to, err)
	}
	return epoch, nil
}

// hold locks the claim's row inside tx, unchanged, when it is still the
// claim's (its epoch and position), and returns the *FencedError or
// *PositionMovedError of a row that is not: a write that speaks for the
// partition without moving its position (RewindStaging's record of the
// generation) is then the owner's alone, as a compare-and-set makes a
// batch's, and a claim that waits for the lock sees it done.
func (o Offsets) hold(ctx context.Context, tx DB, c Claim) error {
	stored := Claim{PartitionID: c.PartitionID}
	err := tx.QueryRow(ctx, `SELECT next_offset, epoch, owner FROM `+o.table+`
		WHERE group_id = $1 AND topic = $2 AND partition = $3 FOR UPDATE`, c.Group, c.Topic, c.Partition).Scan(&stored.NextOffset, &stored.Epoch, &stored.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("partition %s: %w", c.PartitionID, ErrNotClaimed)
	}
	if err != nil {
		return fmt.Errorf("partition %s: lock its offsets row: %w", c.PartitionID, err)
	}
	if stored.Epoch != c.Epoch || stored.NextOffset != c.NextOffset {
		return o.mismatch(c, stored)
	}
	return nil
}

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (o Offsets) mismatch(mine, stored Claim) error {
	if stored.Epoch != mine.Epoch {
		return &FencedError{Partition: mine.PartitionID, Epoch: mine.Epoch, Current: stored.Epoch, Owner: stored.Owner}
	}
	return &PositionMovedError{Partition: mine.PartitionID, Expected: mine.NextOffset, Stored: stored.NextOffset}
}

// Read returns the stored row of a partition, or ErrNotClaimed.
func (o Offsets) Read(ctx context.Context, db DB, p PartitionID) (Claim, error) {
	c := Claim{PartitionID: p}
	err := db.QueryRow(ctx, `SELECT next_offset, epoch, owner FROM `+o.table+`
		WHERE group_id = $1 AND topic = $2 AND partition = $3`, p.Group, p.Topic, p.Partition).Scan(&c.NextOffset, &c.Epoch, &c.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return Claim{}, fmt.Errorf("partition %s: %w", p, ErrNotClaimed)
	}
	if err != nil {
		return Claim{}, fmt.Errorf("partition %s: read offset: %w", p, err)
	}
	return c, nil
}

// ResolveCommit settles a COMMIT whose outcome is unknown (the connection
// failed during it): it re-reads the row on another connection. committed is
// true when the row holds the claim's epoch at next; false when it still
// holds the old position; otherwise the partition was fenced or moved and the
// matching error says so.
func (o Offsets) ResolveCommit(ctx context.Context, db DB, before Claim, next int64) (committed bool, err error) {
	stored, err := o.Read(ctx, db, before.PartitionID)
	if err != nil {
		return false, err
	}
	switch {
	case stored.Epoch == before.Epoch && stored.NextOffset == next:
		return true, nil
	case stored.Epoch == before.Epoch && stored.NextOffset == before.NextOffset:
		return false, nil
	default:
		return false, o.mismatch(before, stored)
	}
}

// ReplayOwnerPrefix marks an offsets row rewound by `pgsink replay`. A
// running instance fenced by such a row re-claims the partition and
// continues from the rewound position; fenced by anything else, it stops.
const ReplayOwnerPrefix = "replay:"

// Rewind sets a partition's position to next under a new epoch owned by a
// replay (see ReplayOwnerPrefix), creating the row if needed. The new epoch
// fences the running owner's next batch, so a batch in flight can never
// move the position past the rewind. The stored source time goes with the
// old position: status says nothing of the lag behind the source until a
// batch from the new one carries a source time.
func (o Offsets) Rewind(ctx context.Context, db DB, p PartitionID, next int64, who string) (Claim, error) {
	c := Claim{PartitionID: p, Owner: ReplayOwnerPrefix + who}
	err := db.QueryRow(ctx, `INSERT INTO `+o.table+` AS o (group_id, topic, partition, next_offset, epoch, owner)
		VALUES ($1, $2, $3, $4, 1, $5)
		ON CONFLICT (group_id, topic, partition) DO UPDATE
		   SET next_offset = excluded.next_offset, epoch = o.epoch + 1, owner = excluded.owner, updated_at = now(),
		       source_ts = NULL, source_applied_at = NULL
		RETURNING next_offset, epoch`, p.Group, p.Topic, p.Partition, next, c.Owner).Scan(&c.NextOffset, &c.Epoch)
	if err != nil {
		return Claim{}, fmt.Errorf("partition %s: rewind to %d: %w", p, next, err)
	}
	return c, nil
}

// Stored is one offsets row, for status reports.
type Stored struct {
	Claim
	UpdatedAt time.Time
	// StoppedReason says why the owner stopped applying the partition;
	// "" while it applies. StoppedAt is when.
	StoppedReason string
	StoppedAt     *time.Time
	// SourceTs is the source commit time of the newest change applied
	// (Debezium's source.ts_us, else ts_ms), SourceAppliedAt when the
	// transaction that applied it began; both nil until a batch carried
	// a source time.
	SourceTs        *time.Time
	SourceAppliedAt *time.Time
}

// BehindSource says how far the target is behind the source on this
// partition, at now. Caught up (no record waits), it is the lag the newest
// applied change had when it was applied, which stays true while the
// source sends nothing newer. With records waiting, it is the time since
// the oldest of them was committed at the source: no earlier than the
// newest applied change's source commit, no later than waiting, the Kafka
// time of the oldest waiting record (zero when unknown), so the time since
// waiting, or since the applied change when that is unknown or earlier.
// ok is false until a batch carried a source time. A source clock ahead of
// this one would make it negative: it is then 0.
func (s Stored) BehindSource(now time.Time, caughtUp bool, waiting time.Time) (lag time.Duration, ok bool) {
	if s.SourceTs == nil || s.SourceAppliedAt == nil {
		return 0, false
	}
	switch {
	case caughtUp:
		lag = s.SourceAppliedAt.Sub(*s.SourceTs)
	case waiting.After(*s.SourceTs):
		lag = now.Sub(waiting)
	default:
		lag = now.Sub(*s.SourceTs)
	}
	return max(lag, 0), true
}

// MarkStopped records on c's row, if c still holds it, why its owner
// stopped applying the partition; the next Claim clears it. Run it outside
// any batch transaction: it moves nothing.
func (o Offsets) MarkStopped(ctx context.Context, db DB, c Claim, reason string) error {
	_, err := db.Exec(ctx, `UPDATE `+o.table+` SET stopped_reason = $1, stopped_at = now()
		WHERE group_id = $2 AND topic = $3 AND partition = $4 AND epoch = $5`, reason, c.Group, c.Topic, c.Partition, c.Epoch)
	if err != nil {
		return fmt.Errorf("partition %s: mark stopped: %w", c.PartitionID, err)
	}
	return nil
}

// List returns the stored rows of a consumer group, by topic and partition.
func (o Offsets) List(ctx context.Context, db Querier, group string) ([]Stored, error) {
	rows, err := db.Query(ctx, `SELECT topic, partition, next_offset, epoch, owner, updated_at, coalesce(stopped_reason, ''), stopped_at,
		source_ts, source_applied_at FROM `+o.table+`
		WHERE group_id = $1 ORDER BY topic, partition`, group)
	if err != nil {
		return nil, fmt.Errorf("list offsets of group %s: %w", group, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stored, error) {
		s := Stored{Claim: Claim{PartitionID: PartitionID{Group: group}}}
		err := r.Scan(&s.Topic, &s.Partition, &s.NextOffset, &s.Epoch, &s.Owner, &s.UpdatedAt, &s.StoppedReason, &s.StoppedAt, &s.SourceTs, &s.SourceAppliedAt)
		return s, err
	})
}
