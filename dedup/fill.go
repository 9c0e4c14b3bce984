package dedup

import (
	"context"
	"fmt"
	"strings"
)

// FillGroupPrefix marks the offsets rows of a fill: `pgsink replay --into`
// or `--rebuild --online` consuming a table's topics into another table
// (connector.Fill). Its positions live beside the instances' under a group
// id of their own, so an instance never reads or fences them, and `pgsink
// status` can show a fill's progress from any machine.
const FillGroupPrefix = "fill:"

// FillGroup is the offsets group of the fill of table into (schema.name)
// for the consumer group group: one fill per target table at a time.
func FillGroup(group, into string) string { return FillGroupPrefix + group + ":" + into }

// FillTarget is the table a fill group fills, and false for a group that
// is not one of group's fills.
func FillTarget(group, fillGroup string) (string, bool) {
	return strings.CutPrefix(fillGroup, FillGroupPrefix+group+":")
}

// FillGroups lists the fill groups of group that have stored positions:
// the fills running, or killed and resumable.
func (o Offsets) FillGroups(ctx context.Context, db Querier, group string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT group_id FROM `+o.table+` WHERE starts_with(group_id, $1) ORDER BY 1`, FillGroupPrefix+group+":")
	if err != nil {
		return nil, fmt.Errorf("list fills of group %s: %w", group, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteGroup deletes every offsets row of group: a fill's positions once
// the fill is done (or abandoned). Only for fill groups: an instance's rows
// are its exactly-once state.
func (o Offsets) DeleteGroup(ctx context.Context, db DB, group string) error {
	if !strings.HasPrefix(group, FillGroupPrefix) {
		return fmt.Errorf("refusing to delete the positions of %q: not a fill's group", group)
	}
	if _, err := db.Exec(ctx, `DELETE FROM `+o.table+` WHERE group_id = $1`, group); err != nil {
		return fmt.Errorf("delete the positions of %s: %w", group, err)
	}
	return nil
}

// Move hands every ledger entry of a filled table over to the table it
// replaces, inside tx, the transaction that swaps the two (an online
// rebuild): first to's own entries are forgotten (they describe the table
// being replaced), then from's become to's. The fill's snapshot ends move
// from fillGroup to group, so the instances' sweeper reconciles them once
// their positions have passed the snapshot.
func (l Ledgers) Move(ctx context.Context, tx DB, from, to, fillGroup, group string) error {
	if err := l.Forget(ctx, tx, to); err != nil {
		return err
	}
	for _, ledger := range []struct{ name, table string }{{"tombstones", l.tombstones}, {"moved_rows", l.movedRows}, {"outbox_events", l.outboxEvents}} {
		if _, err := tx.Exec(ctx, "UPDATE "+ledger.table+" SET target = $2 WHERE target = $1", from, to); err != nil {
			return fmt.Errorf("move %s of %s to %s: %w", ledger.name, from, to, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE "+l.snapshots+" SET target = $2, group_id = $4 WHERE target = $1 AND group_id = $3", from, to, fillGroup, group); err != nil {
		return fmt.Errorf("move snapshots of %s to %s: %w", from, to, err)
	}
	return nil
}

// Lock locks the offsets rows of group's partitions of topics inside tx:
// it waits for the batches that hold them to commit, and holds off the
// next ones (their compare-and-set is their first statement) until tx
// ends. An online rebuild's swap takes it before the table's own lock, in
// the order a batch takes them, so the two never deadlock.
func (o Offsets) Lock(ctx context.Context, tx DB, group string, topics []string) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+o.table+` WHERE group_id = $1 AND topic = ANY($2) ORDER BY topic, partition FOR UPDATE`, group, topics); err != nil {
		return fmt.Errorf("lock the positions of %s: %w", group, err)
	}
	return nil
}
