package verify

import (
	"context"
	"fmt"
	"slices"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/sink/catalog"
)

// Column is one compared column: its name at the source and in the target.
type Column struct {
	Source, Target string
}

// Table is what verify compares of one source table and its target.
type Table struct {
	Source, Target config.TableName
	// Key orders the chunks on both sides and identifies a row.
	Key []Column
	// Columns are every column the table maps (key included), in source
	// order: what the row hashes cover.
	Columns []Column
	// Unmapped are source columns with no target column: not compared.
	Unmapped []string
	// CommitColumn and LSNColumn are the target's version columns.
	CommitColumn, LSNColumn string
	// SoftDeleteColumn, with deletes: soft, marks the target rows the
	// source deleted: they count as absent.
	SoftDeleteColumn string
	// Topics are the Kafka topics routed to the target (for the wait
	// until pgsink has applied a position).
	Topics []string
}

// Describe reads both catalogs and pairs the source's columns with the
// target columns the table configuration maps them to.
func Describe(ctx context.Context, src, dst catalog.Querier, tc *config.Table, source config.TableName) (*Table, error) {
	if tc.Format != config.FormatTable {
		return nil, fmt.Errorf("verify: %s is an outbox table: its rows are events, not a mirror of a source table", tc.Target)
	}
	if tc.Deletes == config.DeletesIgnore {
		return nil, fmt.Errorf("verify: %s keeps the rows the source deleted (deletes: ignore), unmarked: it does not mirror the source's rows", tc.Target)
	}
	s, err := catalog.Read(ctx, src, source.Schema, source.Name)
	if err != nil {
		return nil, fmt.Errorf("verify: source: %w", err)
	}
	if !s.Exists {
		return nil, fmt.Errorf("verify: source table %s does not exist (or the role cannot see it)", source)
	}
	d, err := catalog.Read(ctx, dst, tc.Target.Schema, tc.Target.Name)
	if err != nil {
		return nil, fmt.Errorf("verify: target: %w", err)
	}
	if !d.Exists {
		return nil, fmt.Errorf("verify: target table %s does not exist", tc.Target)
	}
	t := &Table{Source: source, Target: tc.Target.TableName, CommitColumn: tc.Version.CommitColumn, LSNColumn: tc.Version.LSNColumn}
	bookkeeping := []string{tc.Version.CommitColumn, tc.Version.LSNColumn}
	if tc.Deletes == config.DeletesSoft {
		t.SoftDeleteColumn = tc.SoftDelete.Column
		bookkeeping = append(bookkeeping, tc.SoftDelete.Column)
		if _, ok := d.Column(tc.SoftDelete.Column); !ok {
			return nil, fmt.Errorf("verify: target %s has no soft-delete column %q", tc.Target, tc.SoftDelete.Column)
		}
	}
	targetOf := map[string]string{}
	for _, c := range s.Columns {
		to, ok := tc.Columns.Column(c.Name)
		if !ok || slices.Contains(bookkeeping, to) {
			t.Unmapped = append(t.Unmapped, c.Name)
			continue
		}
		if _, ok := d.Column(to); !ok {
			t.Unmapped = append(t.Unmapped, c.Name)
			continue
		}
		targetOf[to] = c.Name
		t.Columns = append(t.Columns, Column{Source: c.Name, Target: to})
	}
	if _, ok := d.Column(tc.Version.CommitColumn); !ok {
		return nil, fmt.Errorf("verify: target %s has no version column %q", tc.Target, tc.Version.CommitColumn)
	}
	key := tc.Key
	if len(key) == 0 {
		key = d.PrimaryKey
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("verify: target %s has no primary key and the configuration names no key", tc.Target)
	}
	for _, k := range key {
		from, ok := targetOf[k]
		if !ok {
			return nil, fmt.Errorf("verify: key column %q of %s maps to no column of source %s", k, tc.Target, source)
		}
		t.Key = append(t.Key, Column{Source: from, Target: k})
	}
	return t, nil
}

// SourceOf returns the source table of a Debezium topic named
// <prefix>.<schema>.<table> (Debezium's default topic naming).
func SourceOf(topic string) (config.TableName, error) {
	var dots []int
	for i := len(topic) - 1; i >= 0 && len(dots) < 2; i-- {
		if topic[i] == '.' {
			dots = append(dots, i)
		}
	}
	if len(dots) < 2 || dots[0] == len(topic)-1 || dots[0]-dots[1] < 2 {
		return config.TableName{}, fmt.Errorf("verify: topic %q is not <prefix>.<schema>.<table>: name the source table with --source-table", topic)
	}
	return config.TableName{Schema: topic[dots[1]+1 : dots[0]], Name: topic[dots[0]+1:]}, nil
}
