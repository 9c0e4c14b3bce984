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
