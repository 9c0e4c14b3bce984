package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/debezium"
)

// Outbox events are deduplicated by event id, not ordered by a version.
//
// They carry no source LSN, so the version guard of table rows has nothing
// to compare. A Kafka offset is not a version either: it restarts when a
// topic is recreated or migrated, and offsets of two partitions are not
// comparable when a key moves after the partition count changed; a guard on
// offsets would then drop new events silently, which is worse than what it
// would prevent. So the ledger (outbox_events, written in the batch's
// transaction) is the only guard:
//
//   - a re-published event (Debezium re-emits after its restarts, at new
//     offsets, with the same id) and a replayed one are skipped while the
//     ledger holds its id, that is within retention.outbox_events;
//   - a replay reaching further back than the retention re-applies old
//     events, and the later events of the same replay, in offset order,
//     bring each row back to its latest state: such a replay regresses rows
//     only while it runs. Keep the retention above the longest replay.
//
// Within a batch the offset order is the event order of one aggregate (one
// key, one partition), so per key the fresh event of the highest offset wins.

// stageOutbox turns a table's outbox events into staging rows: events of
// other types are skipped, an event id seen earlier in the batch is a
// duplicate, and a payload that cannot fill the columns is a record error.
func stageOutbox(t *Table, items []Item, idx []int, st *Stats) ([][]any, error) {
	rows := make([][]any, 0, len(idx))
	seen := make(map[string]bool, len(idx))
	for _, i := range idx {
		ch := &items[i].Change
		ev := ch.Outbox
		if ch.Kind != debezium.KindOutbox || ev == nil {
			return nil, &RecordError{Item: i, Err: errors.New("not an outbox event, but routed to an outbox table")}
		}
		if !t.Outbox.takes(ev.Type) {
			st.Skipped++
			continue
		}
		if ev.EventID == "" {
			return nil, &RecordError{Item: i, Err: errors.New("outbox event without an event id, which deduplication needs")}
		}
		if seen[ev.EventID] {
			st.Duplicates++
			continue
		}
		seen[ev.EventID] = true
		p, err := newPayload(ev.Payload)
		if err != nil {
			return nil, &RecordError{Item: i, Err: err}
		}
		row := make([]any, 0, 2+len(t.Columns))
		row = append(row, ev.EventID, items[i].Record.Offset)
		for _, c := range t.Columns {
			v, err := p.text(c.Path, c.Type)
			if err != nil {
				return nil, &RecordError{Item: i, Err: fmt.Errorf("column %q: %w", c.Name, err)}
			}
			if v == nil && t.isKey(c.Name) {
				return nil, &RecordError{Item: i, Err: fmt.Errorf("key column %q: payload path %s is null", c.Name, c.Path.Source)}
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (a *Applier) outboxStatementsFor(t *Table) *outboxStatements {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.outbox.get(t)
	if !ok {
		st = newOutboxStatements(t, a.opts.Schema)
		a.outbox.put(t, st)
	}
	return st
}

// writeOutbox stages a table's events and applies them with the ledger in
// one statement.
func (a *Applier) writeOutbox(ctx context.Context, x *txn, t *Table, items []Item, idx []int) error {
	rows, err := stageOutbox(t, items, idx, &x.stats)
	if err != nil || len(rows) == 0 {
		return err
	}
	stmts := a.outboxStatementsFor(t)
	if err := x.useStage(ctx, stmts.stageName, stmts.createStage); err != nil {
		return fmt.Errorf("create outbox staging table: %w", err)
	}
	if err := x.stage(ctx, stmts.stageName, stmts.stageCols, rows); err != nil {
		return fmt.Errorf("stage outbox events: %w", err)
	}
	// As for table rows (see writeTable): custom plans for a stage whose
	// size changes per batch, no JIT for a statement this short.
	x.queue.Queue(applySettings)
	staged := int64(len(rows))
	x.queue.Queue(stmts.apply, t.Ref(), x.part.topic, x.part.partition).Fn = func(br pgx.BatchResults) error {
		var fresh, written int64
		if err := br.QueryRow().Scan(&fresh, &written); err != nil {
			return fmt.Errorf("apply outbox events of %s: %w", t.Ref(), err)
		}
		x.stats.Duplicates += staged - fresh
		x.stats.Upserted += written
		return nil
	}
	x.unstage(stmts.stage, len(rows))
	return nil
}

// partition names the ledger's record of where an event came from.
type partition struct {
	topic     string
	partition int32
}
