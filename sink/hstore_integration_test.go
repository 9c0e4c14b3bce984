//go:build integration

package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
)

// TestIntegrationApplyHstoreAndBit: hstore and hstore[] as Debezium 3.6.1
// sends them (JSON text under hstore.handling.mode=json, the JSON object
// under map; recorded by the fidelity matrix), and bit(1) as its boolean,
// reach their columns exactly: in a large batch (binary COPY into the
// target for the creates, into the stage for the updates) and in a small
// one (bound parameters), with no retry, split or dead letter.
func TestIntegrationApplyHstoreAndBit(t *testing.T) {
	type hcase struct {
		json, literal string
		bit           bool
	}
	cases := []hcase{
		{`{"a":"1","b":null,"c d":"e"}`, `"a"=>"1", "b"=>NULL, "c d"=>"e"`, true},
		{`{}`, ``, false},
		{`{"q\"k":"back\\slash","":"=>, {}"}`, `"q\"k"=>"back\\slash", ""=>"=>, {}"`, true},
	}
	for _, rows := range []int64{3, 300} {
		t.Run(fmt.Sprintf("%d rows", rows), func(t *testing.T) {
			ctx := context.Background()
			pool := migratedPool(t)
			if _, err := pool.Exec(ctx, `CREATE EXTENSION hstore`); err != nil {
				t.Fatal(err)
			}
			tbl, claim := columnTable(t, pool, "hs", [][2]string{{"h", "hstore"}, {"hm", "hstore"}, {"ha", "hstore[]"},
				{"hma", "hstore[]"}, {"b", "bit(1)"}})
			applier := sink.NewApplier(pool, sink.Options{Schema: schema})
			n := int64(len(cases))
			batch := func(op debezium.Op, version, shift int64) *sink.Batch {
				return rowsBatch(claim, tbl, op, version, rows, func(id int64) debezium.Row {
					c := cases[(id+shift)%n]
					return debezium.Row{{Name: "id", Value: id},
						{Name: "h", Value: c.json}, {Name: "hm", Value: json.RawMessage(c.json)},
						{Name: "ha", Value: []pgtype.Text{{String: c.json, Valid: true}, {}}},
						{Name: "hma", Value: []any{json.RawMessage(c.json), nil}},
						{Name: "b", Value: c.bit}}
				})
			}
			for _, step := range []struct {
				op             debezium.Op
				version, shift int64
			}{{debezium.OpCreate, 1000, 0}, {debezium.OpUpdate, 2000, 1}} {
				st, err := applier.Apply(ctx, batch(step.op, step.version, step.shift))
				if err != nil {
					t.Fatalf("%c: Apply: %v", step.op, err)
				}
				if st.Retries != 0 || st.Splits != 0 || st.DeadLetters != 0 || st.Transactions != 1 || st.Upserted != rows {
					t.Fatalf("%c: stats %+v; want every row applied in one transaction: no retry, split or dead letter", step.op, st)
				}
				for id := int64(1); id <= rows; id++ {
					c := cases[(id+step.shift)%n]
					var exact bool
					var got string
					err := pool.QueryRow(ctx, `SELECT h = $2::hstore AND hm = $2::hstore
						AND ha::text = array[$2::hstore, NULL]::text AND hma::text = ha::text
						AND b = (CASE WHEN $3 THEN B'1' ELSE B'0' END),
						row_to_json(x)::text FROM public.hs x WHERE id = $1`, id, c.literal, c.bit).Scan(&exact, &got)
					if err != nil {
						t.Fatal(err)
					}
					if !exact {
						t.Fatalf("%c: row %d is %s; want hstore %s and bit %v", step.op, id, got, c.literal, c.bit)
					}
				}
			}
		})
	}
}

// TestIntegrationApplyMalformedHstore: text hstore's input refuses raises an
// internal error (XX000) in PostgreSQL; it is the record's fault, so under
// errors.tolerance=all the record goes to the dead letters and the rest of
// the batch is applied, and under none its partition stops at it
// (PoisonError), rather than the whole process stopping.
func TestIntegrationApplyMalformedHstore(t *testing.T) {
	for _, stop := range []bool{false, true} {
		t.Run(fmt.Sprintf("stop on error %v", stop), func(t *testing.T) {
			ctx := context.Background()
			pool := migratedPool(t)
			if _, err := pool.Exec(ctx, `CREATE EXTENSION hstore`); err != nil {
				t.Fatal(err)
			}
			tbl, claim := columnTable(t, pool, "hs", [][2]string{{"h", "hstore"}})
			first := claim.NextOffset
			values := []string{`"a"=>"1"`, `a b c`, `{"b":"2"}`}
			b := rowsBatch(claim, tbl, debezium.OpCreate, 100, int64(len(values)), func(id int64) debezium.Row {
				return debezium.Row{{Name: "id", Value: id}, {Name: "h", Value: values[id-1]}}
			})
			st, err := sink.NewApplier(pool, sink.Options{Schema: schema, StopOnError: stop}).Apply(ctx, b)
			var poison *sink.PoisonError
			if stop {
				if !errors.As(err, &poison) || poison.Offset != first+1 {
					t.Fatalf("got %v, want the partition stopped at the malformed record (offset %d)", err, first+1)
				}
				return
			}
			if err != nil || st.DeadLetters != 1 {
				t.Fatalf("got %v, stats %+v; want the malformed record in the dead letters and no error", err, st)
			}
			var applied int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM public.hs WHERE (id = 1 AND h = '"a"=>"1"') OR (id = 3 AND h = '"b"=>"2"')`).Scan(&applied); err != nil || applied != 2 {
				t.Fatalf("got %d rows (%v), want the two well-formed records applied", applied, err)
			}
		})
	}
}
