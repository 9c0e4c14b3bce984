package sink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ApplyDetached applies items outside any partition's position: no offset
// moves, so it is for records whose offsets are already behind the stored
// position, such as dead letters retried after their cause was fixed. The
// writes are version-guarded like any other, so retrying a record older
// than the target row changes nothing. inTx runs in the same transaction
// before COMMIT (for example, to delete the dead letter). A record that
// still fails is not isolated: the whole call fails and nothing is written.
func (a *Applier) ApplyDetached(ctx context.Context, items []Item, inTx func(context.Context, pgx.Tx) error) (Stats, error) {
	var st Stats
	if len(items) == 0 {
		return st, nil
	}
	for i, it := range items {
		if it.Err != nil {
			return st, &RecordError{Item: i, Err: it.Err}
		}
	}
	part := partition{items[0].Record.Topic, items[0].Record.Partition}
	err := a.retry(ctx, &st, func() error {
		conn, err := a.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("sink: acquire connection: %w", err)
		}
		defer conn.Release()
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("sink: begin: %w", err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		// Upserts only: a plain INSERT's conflict would abort the caller's
		// transaction, which applyOnce's second attempt cannot redo.
		x := newTxn(part, false)
		x.conn, x.maxStages = conn.Conn(), a.opts.StagingTablesPerConnection
		err = a.write(ctx, x, items, 0, len(items))
		if err == nil {
			x.queueStageEvictions()
			err = x.flush(ctx)
		}
		if err != nil {
			return err
		}
		if inTx != nil {
			if err := inTx(ctx, tx); err != nil {
				return err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("sink: commit: %w", err)
		}
		x.keepStages()
		st.add(x.stats)
		st.Transactions++
		return nil
	})
	return st, err
}
