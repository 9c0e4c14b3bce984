package dedup

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StagingCopy is the staging of a batch's records by COPY: PostgreSQL
// writes COPY's rows with its multi-row heap insert (one WAL record per
// page rather than per row) and without an INSERT's per-row executor work,
// for what is the largest statement of transaction mode. A COPY cannot
// leave out the records of transactions the resolver applied already (a
// replay, a re-emission), as the INSERT's NOT EXISTS does: those applied
// when the batch began are read before it and left out of it (a replay
// of applied transactions writes nothing), and QueueUnstage deletes after
// it, in the same transaction, the records of any the resolver applied
// meanwhile, so that no staged row is left that no END will consume.
type StagingCopy struct {
	t     Transactions
	group string
	rows  *stagedRows
	// applied are the commit positions of the batch's transaction ids
	// applied already (0: applied before positions were recorded), read
	// in the round trip before the COPY.
	applied map[int64][]int64
	// skipped is set when Copy left records out.
	skipped bool
}

// PrepareCopy queues into b, a batch transaction after its offsets
// compare-and-set, the storing of the schemas records are split from, and
// returns their COPY: send b, then Copy, then QueueUnstage. Records
// expected not to be staged yet only: one staged already fails the COPY
// with a unique violation, and its caller runs the transaction again with
// QueueStage, as for QueueStageNew.
func (t Transactions) PrepareCopy(b *pgx.Batch, group string, records []StagedRecord) (*StagingCopy, error) {
	rows, err := t.stagedRows(records)
	if err != nil {
		return nil, err
	}
	if len(rows.schemas) > 0 {
		t.queueSchemas(b, rows.schemas)
	}
	c := &StagingCopy{t: t, group: group, rows: rows, applied: map[int64][]int64{}}
	ids := distinct(rows.txIDs)
	b.Queue(`SELECT x.tx_id, x.commit_lsn FROM `+t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = ANY($2::bigint[])`, group, ids).Fn = func(br pgx.BatchResults) error {
		got, err := br.Query()
		if err != nil {
			return fmt.Errorf("dedup: read which of %d transactions are applied: %w", len(ids), err)
		}
		var id, commit int64
		_, err = pgx.ForEachRow(got, []any{&id, &commit}, func() error { c.applied[id] = append(c.applied[id], commit); return nil })
		if err != nil {
			return fmt.Errorf("dedup: read which of %d transactions are applied: %w", len(ids), err)
		}
		return nil
	}
	return c, nil
}

// stagedColumns are the columns a COPY of staged records writes, in the
// order copyRows encodes them; staged_at takes its default.
const stagedColumns = `group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset,
	record_ts, record_key, record_value, headers, dead, key_schema, value_schema`

// Copy COPYs the records into tx_staged in the transaction open on conn,
// but those of transactions applied already.
func (c *StagingCopy) Copy(ctx context.Context, conn *pgx.Conn) error {
	skip := make([]bool, len(c.rows.txIDs))
	n := 0
	for i, id := range c.rows.txIDs {
		skip[i] = c.ofApplied(id, c.rows.lsns[i])
		if !skip[i] {
			n++
		}
	}
	c.skipped = n < len(skip)
	if n == 0 {
		return nil
	}
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(c.rows.copyData(c.group, skip)),
		`COPY `+c.t.staged+` (`+stagedColumns+`) FROM STDIN BINARY`); err != nil {
		return fmt.Errorf("dedup: stage %d records of transactions: %w", n, err)
	}
	return nil
}

// ofApplied reports whether a record of transaction id at lsn belongs to
// an applied transaction: one of that id whose commit position is past
// the record's (or unknown), as QueueStage's NOT EXISTS decides.
func (c *StagingCopy) ofApplied(id, lsn int64) bool {
	for _, commit := range c.applied[id] {
		if commit == 0 || lsn < commit {
			return true
		}
	}
	return false
}

// Bytes are the bytes of keys and values the records take in tx_staged,
// as QueueStage returns them.
func (c *StagingCopy) Bytes() int64 { return c.rows.bytes }

// QueueUnstage queues into b, after the COPY, the deletion of the records
// it staged of transactions the resolver applied already. short, unless
// nil, is called when the result is read if tx_staged holds fewer of the
// records than Bytes counts: Copy left some out, or this deleted some.
func (c *StagingCopy) QueueUnstage(b *pgx.Batch, short func()) {
	ids := distinct(c.rows.txIDs)
	// The resolved ids are gathered first (ARRAY(...), evaluated once):
	// as a semi-join the statement may be planned as a merge join that
	// reads the group's staged rows in key order up to the highest
	// resolved id, most of the table when a replay meets an old one. A
	// record is of a resolved transaction when its LSN is below the
	// transaction's commit position (QueueStage): the batch's records are
	// matched one by one, so that the records of a transaction whose xid
	// came round stay staged.
	b.Queue(`DELETE FROM `+c.t.staged+` s USING unnest($3::bigint[], $4::bigint[], $5::bigint[]) AS r(tx_id, total_order, lsn)
		WHERE s.group_id = $1 AND s.tx_id = ANY(ARRAY(
		  SELECT x.tx_id FROM `+c.t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = ANY($2::bigint[])))
		  AND s.tx_id = r.tx_id AND s.total_order = r.total_order
		  AND EXISTS (SELECT 1 FROM `+c.t.resolved+` x WHERE x.group_id = $1 AND x.tx_id = r.tx_id
		              AND (x.commit_lsn = 0 OR r.lsn < x.commit_lsn))`,
		c.group, ids, c.rows.txIDs, c.rows.orders, c.rows.lsns).Fn = func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("dedup: unstage the records of applied transactions among %d: %w", len(ids), err)
		}
		if short != nil && (c.skipped || tag.RowsAffected() > 0) {
			short()
		}
		return nil
	}
}

// distinct returns ids without repetitions, in their first order.
func distinct(ids []int64) []int64 {
	out := make([]int64, 0, 8)
	seen := make(map[int64]bool, 8)
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// copyData encodes the rows in COPY's binary format, the columns of
// stagedColumns, leaving out the rows skip marks (nil: none).
func (r *stagedRows) copyData(group string, skip []bool) []byte {
	size := 19 + 2
	for i := range r.txIDs {
		if skip != nil && skip[i] {
			continue
		}
		size += 2 + 14*4 + 8*4 + 4 + 8 + 1 + len(group) + len(r.collections[i]) + len(r.topics[i]) + len(r.keys[i]) + len(r.values[i]) +
			1 + len(r.headers[i]) + len(r.keySchemas[i]) + len(r.valueSchemas[i])
	}
	buf := make([]byte, 0, size)
	buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension
	for i := range r.txIDs {
		if skip != nil && skip[i] {
			continue
		}
		buf = binary.BigEndian.AppendUint16(buf, 14)
		buf = appendField(buf, []byte(group))
		buf = appendInt64(buf, r.txIDs[i])
		buf = appendInt64(buf, r.orders[i])
		buf = appendField(buf, []byte(r.collections[i]))
		buf = appendField(buf, []byte(r.topics[i]))
		buf = binary.BigEndian.AppendUint32(buf, 4)
		buf = binary.BigEndian.AppendUint32(buf, uint32(r.partitions[i]))
		buf = appendInt64(buf, r.offsets[i])
		if ts := r.stamps[i]; ts != nil {
			buf = appendInt64(buf, pgMicros(*ts))
		} else {
			buf = appendNull(buf)
		}
		buf = appendBytea(buf, r.keys[i])
		buf = appendBytea(buf, r.values[i])
		// jsonb's binary form: version 1, then the text.
		buf = binary.BigEndian.AppendUint32(buf, uint32(1+len(r.headers[i])))
		buf = append(buf, 1)
		buf = append(buf, r.headers[i]...)
		buf = binary.BigEndian.AppendUint32(buf, 1)
		if r.dead[i] {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		buf = appendBytea(buf, r.keySchemas[i])
		buf = appendBytea(buf, r.valueSchemas[i])
	}
	return binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
}

func appendField(buf, data []byte) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(data)))
	return append(buf, data...)
}

// appendBytea appends a bytea, NULL for nil.
func appendBytea(buf, data []byte) []byte {
	if data == nil {
		return appendNull(buf)
	}
	return appendField(buf, data)
}

func appendNull(buf []byte) []byte { return binary.BigEndian.AppendUint32(buf, 0xffffffff) }

func appendInt64(buf []byte, v int64) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 8)
	return binary.BigEndian.AppendUint64(buf, uint64(v))
}

// pgEpoch is PostgreSQL's epoch of timestamps, 2000-01-01 UTC.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// pgMicros is t as timestamptz's binary form, microseconds since pgEpoch.
func pgMicros(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000) - pgEpoch.Unix()*1_000_000
}
