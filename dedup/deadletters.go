package dedup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetter is a record that could not be applied (I5), as the dead-letter
// table keeps it: where it was read, what it held, why it failed.
type DeadLetter struct {
	ID        int64 // set when listed
	Group     string
	Topic     string
	Partition int32
	Offset    int64
	Target    string // the table the record was routed to; "" when none
	Key       []byte
	Value     []byte
	Headers   []Header
	Error     string
	Class     string    // what kind of failure: decode, apply, postgres:<SQLSTATE>
	FailedAt  time.Time // set when listed
}

// Header is one Kafka header of a dead letter. Key and Value hold the
// header's bytes, which need not be text (see header.go).
type Header struct {
	Key   string
	Value string
}

// DeadLetterFilter selects the dead letters of one consumer group.
type DeadLetterFilter struct {
	Group  string
	Fills  bool    // also those of Group's fills (FillGroup), each with its own Group
	Target string  // "" for every target
	Topic  string  // "" for every topic
	IDs    []int64 // these only, whatever Limit says; nil for any
	Limit  int     // the newest Limit when IDs is nil
}

// DeadLetterCount is how many dead letters one target and topic hold.
type DeadLetterCount struct {
	Target string // "" for records routed to no table
	Topic  string
	Count  int64
	Last   time.Time
}

// DeadLetters is the dead-letter table of a schema.
type DeadLetters struct {
	table string // quoted, schema-qualified
}

// NewDeadLetters returns the dead-letter table of pgsink's tables in schema.
func NewDeadLetters(schema string) DeadLetters {
	return DeadLetters{table: pgx.Identifier{schema, "dead_letters"}.Sanitize()}
}

// Insert returns the statement that stores l, for the caller to run in the
// transaction that moves the offset past it (I1). A record written again
// (a redelivery) keeps one row, with the newest error.
func (d DeadLetters) Insert(l DeadLetter) (sql string, args []any) {
	var target *string
	if l.Target != "" {
		target = &l.Target
	}
	headers := l.Headers
	if headers == nil {
		headers = []Header{}
	}
	return `INSERT INTO ` + d.table + ` (group_id, topic, partition, "offset", target, key, value, headers, error, error_class)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (group_id, topic, partition, "offset") DO UPDATE
		   SET error = excluded.error, error_class = excluded.error_class, failed_at = now()`,
		[]any{l.Group, l.Topic, l.Partition, l.Offset, target, l.Key, l.Value, headers, l.Error, l.Class}
}

// List returns the dead letters f selects, newest first.
func (d DeadLetters) List(ctx context.Context, db Querier, f DeadLetterFilter) ([]DeadLetter, error) {
	where := []string{"group_id = $1"}
	args := []any{f.Group}
	if f.Fills {
		args = append(args, FillGroupPrefix+f.Group+":")
		where[0] = "(group_id = $1 OR starts_with(group_id, $2))"
	}
	if f.Target != "" {
		args = append(args, f.Target)
		where = append(where, fmt.Sprintf("target = $%d", len(args)))
	}
	if f.Topic != "" {
		args = append(args, f.Topic)
		where = append(where, fmt.Sprintf("topic = $%d", len(args)))
	}
	if len(f.IDs) > 0 {
		args = append(args, f.IDs)
		where = append(where, fmt.Sprintf("id = ANY($%d)", len(args)))
	}
	query := `SELECT id, group_id, topic, partition, "offset", coalesce(target, ''), key, value, coalesce(headers, '[]'), error, error_class, failed_at
		FROM ` + d.table + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC`
	if len(f.IDs) == 0 {
		args = append(args, f.Limit)
		query += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	letters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var l DeadLetter
		err := r.Scan(&l.ID, &l.Group, &l.Topic, &l.Partition, &l.Offset, &l.Target, &l.Key, &l.Value, &l.Headers, &l.Error, &l.Class, &l.FailedAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return letters, nil
}

// Delete removes the dead letter id inside tx, the transaction that applied
// its record again.
func (d DeadLetters) Delete(ctx context.Context, tx DB, id int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM `+d.table+` WHERE id = $1`, id)
	return err
}

// Count returns how many dead letters a consumer group has per target and
// topic, by target and topic.
func (d DeadLetters) Count(ctx context.Context, db Querier, group string) ([]DeadLetterCount, error) {
	rows, err := db.Query(ctx, `SELECT coalesce(target, ''), topic, count(*), max(failed_at) FROM `+
		d.table+` WHERE group_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`, group)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetterCount, error) {
		var c DeadLetterCount
		err := r.Scan(&c.Target, &c.Topic, &c.Count, &c.Last)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return counts, nil
}
