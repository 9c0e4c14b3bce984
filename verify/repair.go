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
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// Repair heals the confirmed drift of res through Debezium: it inserts
// execute-snapshot signals (an incremental snapshot with
// additional-conditions naming the differing keys) into the connector's
// signal table, so the source's current rows flow through Kafka and are
// applied by pgsink's guarded apply path like any change. Keys the source no
// longer holds, which no snapshot deletes, are deleted through the sink's
// delete path (see deleteGone). Rows whose stored version is past the
// source's position, which the guard would keep against every snapshot, first
// have it lowered to that position (sink.LowerFutureVersions), then are
// re-read like the others. Then it checks the keys again until they are clean
// or the timeout passes, and returns what still differs.
func (v *Verifier) Repair(ctx context.Context, t *Table, res *TableResult, r RepairTarget) (*TableResult, error) {
	var snap, gone []driftKey
	ahead := false
	for _, k := range res.keys {
		switch k.kind {
		case Missing, Changed:
			snap = append(snap, k)
		case VersionAhead:
			snap, ahead = append(snap, k), true
		case Extra:
			gone = append(gone, k)
		}
	}
	if ahead {
		if err := v.lowerFutureVersions(ctx, t, r); err != nil {
			return nil, err
		}
	}
	for _, filter := range filters(sourceSide(t), snap, maxSignalData) {
		if err := v.signal(ctx, t, r.SignalTable, filter); err != nil {
			return nil, err
		}
	}
	if err := deleteGone(ctx, t, r, gone); err != nil {
		return nil, err
	}
	timeout := r.Timeout
	var cands []candidate
	for _, k := range res.keys {
		cands = append(cands, k.candidate)
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
		after.Elapsed = res.Elapsed
		if (len(after.keys) == 0 && len(after.Unsettled) == 0) || time.Now().After(deadline) {
			return after, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// lowerFutureVersions reads the source's WAL position and has the sink set
// every target version past it to it: no event carries such a version, and
// the snapshot signal that follows rewrites the rows' content at a real one.
func (v *Verifier) lowerFutureVersions(ctx context.Context, t *Table, r RepairTarget) error {
	var lsn int64
	if err := v.src.QueryRow(ctx, `SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint`).Scan(&lsn); err != nil {
		return fmt.Errorf("verify: source WAL position: %w", err)
	}
	_, err := sink.LowerFutureVersions(ctx, r.Pool, t.Target, config.Version{CommitColumn: t.CommitColumn, LSNColumn: t.LSNColumn}, lsn)
	return err
}

// RepairTarget is what --repair writes through: the connector's signal
// table at the source, and pgsink's own apply path at the target.
type RepairTarget struct {
	SignalTable config.TableName
	Pool        *pgxpool.Pool
	Config      *config.Config
	Timeout     time.Duration
}

// deleteGone deletes the target rows of keys the source no longer holds
// through sink.DeleteKeys, the path Debezium's delete events take, at the
// version (L, L) of the re-check that confirmed each: pgsink had applied
// everything the source committed up to L, so the source's delete of the key
// is older, and a later re-creation of the key is newer and passes the
// tombstone; a re-creation already applied holds a newer version, which the
// delete's guard leaves alone. The tombstone keeps Debezium's re-emissions of
// older events out (I4) as any delete's does.
func deleteGone(ctx context.Context, t *Table, r RepairTarget, gone []driftKey) error {
	byVersion := map[int64][]debezium.Row{}
	for _, k := range gone {
		row := make(debezium.Row, len(t.Key))
		for i, c := range t.Key {
			row[i] = debezium.Field{Name: c.Source, Value: k.values[i]}
		}
		byVersion[k.checkedAt] = append(byVersion[k.checkedAt], row)
	}
	for lsn, keys := range byVersion {
		if _, err := sink.DeleteKeys(ctx, r.Pool, r.Config, t.Topics[0], keys, debezium.Version{CommitLSN: lsn, LSN: lsn}); err != nil {
			return fmt.Errorf("verify: delete keys the source no longer has: %w", err)
		}
	}
	return nil
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
