package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
)

// Repair heals the confirmed drift of res through Debezium: it inserts
// execute-snapshot signals (an incremental snapshot with
// additional-conditions naming the differing keys) into the connector's
// signal table, so the source's current rows flow through Kafka and are
// applied by pgsink's guarded apply path like any change; then it checks the
// keys again until they are clean or timeout passes. It returns the keys
// still differing. Two kinds no snapshot heals stay, reported (see
// docs/recovery.md): keys the source no longer holds (a snapshot reads no
// deletes), and versions ahead of the source (the guard keeps them).
func (v *Verifier) Repair(ctx context.Context, t *Table, res *TableResult, signal config.TableName, timeout time.Duration) (*TableResult, error) {
	var snap []driftKey
	for _, k := range res.keys {
		if k.kind == Missing || k.kind == Changed {
			snap = append(snap, k)
		}
	}
	for _, filter := range filters(sourceSide(t), snap, maxSignalData) {
		if err := v.signal(ctx, t, signal, filter); err != nil {
			return nil, err
		}
	}
	var cands []candidate
	for _, k := range res.keys {
		if k.kind != VersionAhead {
			cands = append(cands, k.candidate)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		after := &TableResult{Source: res.Source, Target: res.Target, SourceRows: res.SourceRows, TargetRows: res.TargetRows,
			Chunks: res.Chunks, DifferingChunks: res.DifferingChunks, Unmapped: res.Unmapped}
		if _, err := v.versionsAhead(ctx, t, after); err != nil {
			return nil, err
		}
		if err := v.settle(ctx, t, cands, after); err != nil {
			return nil, err
		}
		// Keys a snapshot cannot heal: rows the source no longer has, and
		// versions ahead of the source, which the guard keeps.
		healable := false
		for _, k := range after.keys {
			healable = healable || k.kind == Missing || k.kind == Changed
		}
		after.Elapsed = res.Elapsed
		if (!healable && len(after.Unsettled) == 0) || time.Now().After(deadline) {
			return after, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// maxSignalData keeps one signal's data within the varchar(2048) of
// Debezium's documented signal table.
const maxSignalData = 2000

// filters renders the keys as additional-conditions filters, each short
// enough for one signal: `"id" IN ('1', '2')`, or for a composite key
// `("a", "b") IN (('x', '1'))`. The values are the source's own text forms
// as quoted literals (standard_conforming_strings, PostgreSQL's default
// since 9.1), which PostgreSQL coerces to the key columns' types.
func filters(s side, keys []driftKey, limit int) []string {
	var out []string
	head := s.keyTuple() + " IN ("
	if len(s.key) == 1 {
		head = s.key[0] + " IN ("
	}
	var b strings.Builder
	n := 0
	flush := func() {
		if n > 0 {
			out = append(out, b.String()+")")
		}
		b.Reset()
		n = 0
	}
	for _, k := range keys {
		lits := make([]string, len(k.keyText))
		for i, v := range k.keyText {
			if v == nil {
				lits[i] = "NULL"
			} else {
				lits[i] = "'" + strings.ReplaceAll(*v, "'", "''") + "'"
			}
		}
		item := strings.Join(lits, ", ")
		if len(lits) > 1 {
			item = "(" + item + ")"
		}
		if n > 0 && b.Len()+len(item)+200 > limit {
			flush()
		}
		if n == 0 {
			b.WriteString(head)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(item)
		n++
	}
	flush()
	return out
}

func (v *Verifier) signal(ctx context.Context, t *Table, signal config.TableName, filter string) error {
	collection := t.Source.Schema + "." + t.Source.Name
	data, err := json.Marshal(map[string]any{
		"type":             "incremental",
		"data-collections": []string{collection},
		"additional-conditions": []map[string]string{
			{"data-collection": collection, "filter": filter},
		},
	})
	if err != nil {
		return err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	_, err = v.src.Exec(ctx, `INSERT INTO `+pgx.Identifier{signal.Schema, signal.Name}.Sanitize()+` (id, type, data) VALUES ($1, 'execute-snapshot', $2)`,
		"pgsink-verify-"+hex.EncodeToString(id), string(data))
	if err != nil {
		return fmt.Errorf("verify: signal %s: %w", signal, err)
	}
	return nil
}
