//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/internal/decimal"
	"github.com/pgsink/pgsink/sink"
)

// losslessCase is one source value as Debezium 3.6.1 sends it under the
// shipped settings (decimal.handling.mode=string,
// interval.handling.mode=string; recorded on the local stack), and the
// PostgreSQL literal it must arrive as.
type losslessCase struct {
	numeric, numericLiteral string // the numeric column's text, and its value
	// float is the text sent to the float columns: numeric's, but where
	// it has no float (PostgreSQL refuses underflow too).
	float           string
	interval        debezium.ISOInterval
	intervalLiteral string
}

var losslessCases = []losslessCase{
	{"NAN", "NaN", "NAN", iso("P1Y2M3DT4H5M6.789S", 14, 3, 14_706_789_000), "1 year 2 mons 3 days 04:05:06.789"},
	{"POSITIVE_INFINITY", "Infinity", "POSITIVE_INFINITY", iso("P-1Y-2M3DT-4H-5M-6.000001S", -14, 3, -14_706_000_001), "-1 year -2 mons +3 days -04:05:06.000001"},
	{"NEGATIVE_INFINITY", "-Infinity", "NEGATIVE_INFINITY", iso("P-178000000Y0M0DT0H0M0S", -2_136_000_000, 0, 0), "-178000000 years"},
	{"0." + strings.Repeat("0", 999) + "12345", "0." + strings.Repeat("0", 999) + "12345", "0.1", iso("P0Y1M-1DT0H0M1.5S", 1, -1, 1_500_000), "1 mon -1 day 1.5 sec"},
	{"-0.0000", "-0.0000", "-0.0000", iso("P0Y0M0DT0H0M0S", 0, 0, 0), "0"},
	{"99999999999999999999999999999999999999.99999999999999999999", "99999999999999999999999999999999999999.99999999999999999999",
		"99999999999999999999999999999999999999.99999999999999999999", iso("PT2562047788H", 0, 0, 2562047788*3600_000_000), "2562047788 hours"},
}

// floatLiteral spells Debezium's special values as PostgreSQL's float
// input does.
func floatLiteral(s string) string {
	if k := decimal.Special(s); k != decimal.Finite {
		return k.PostgreSQL()
	}
	return s
}

func iso(text string, months, days int32, micros int64) debezium.ISOInterval {
	return debezium.ISOInterval{Interval: pgtype.Interval{Months: months, Days: days, Microseconds: micros, Valid: true}, Text: text}
}

// TestIntegrationApplyLosslessValues: NaN, ±Infinity, huge scale and
// precision as decimal strings, and ISO-8601 intervals with every part and
// negative ones, reach numeric, double precision, real, numeric[] and
// interval columns exactly, and text columns as Debezium sent them: in a
// large batch (binary COPY into the target for the creates, into the stage
// for the updates) and in a small one (bound parameters). No transaction is
// retried or split: no value needs a way around the one it was sent by.
func TestIntegrationApplyLosslessValues(t *testing.T) {
	for _, rows := range []int64{3, 300} {
		t.Run(fmt.Sprintf("%d rows", rows), func(t *testing.T) {
			ctx := context.Background()
			pool := migratedPool(t)
			tbl, claim := columnTable(t, pool, "lossless", [][2]string{{"n", "numeric"}, {"n_text", "text"}, {"f", "double precision"},
				{"r", "real"}, {"na", "numeric[]"}, {"iv", "interval"}, {"iv_text", "text"}})
			applier := sink.NewApplier(pool, sink.Options{Schema: schema})
			batch := func(op debezium.Op, version int64, caseOf func(id int64) losslessCase) *sink.Batch {
				return rowsBatch(claim, tbl, op, version, rows, func(id int64) debezium.Row {
					c := caseOf(id)
					return debezium.Row{{Name: "id", Value: id}, {Name: "n", Value: c.numeric}, {Name: "n_text", Value: c.numeric},
						{Name: "f", Value: c.float}, {Name: "r", Value: c.float},
						{Name: "na", Value: []pgtype.Text{{String: c.numeric, Valid: true}, {}}},
						{Name: "iv", Value: c.interval}, {Name: "iv_text", Value: c.interval}}
				})
			}
			n := int64(len(losslessCases))
			for _, step := range []struct {
				op      debezium.Op
				version int64
				caseOf  func(id int64) losslessCase
			}{
				{debezium.OpCreate, 1000, func(id int64) losslessCase { return losslessCases[id%n] }},
				{debezium.OpUpdate, 2000, func(id int64) losslessCase { return losslessCases[(id+1)%n] }},
			} {
				st, err := applier.Apply(ctx, batch(step.op, step.version, step.caseOf))
				if err != nil {
					t.Fatalf("%c: Apply: %v", step.op, err)
				}
				if st.Retries != 0 || st.Splits != 0 || st.InsertConflicts != 0 || st.DeadLetters != 0 || st.Transactions != 1 || st.Upserted != rows {
					t.Fatalf("%c: stats %+v; want every row applied in one transaction: no retry, split, upserts-only attempt or dead letter", step.op, st)
				}
				for id := int64(1); id <= rows; id++ {
					c := step.caseOf(id)
					var exact bool
					var got string
					// Text renderings compare exactly: numeric's keeps the
					// scale, interval's keeps months, days and time apart
					// (interval = compares them justified).
					err := pool.QueryRow(ctx, `SELECT n::text = $2::numeric::text AND n_text = $3
						AND f = $6::float8 AND r = $6::float4 AND na::text = array[$2::numeric, NULL]::text
						AND iv::text = $4::interval::text AND iv_text = $5,
						row_to_json(l)::text FROM public.lossless l WHERE id = $1`,
						id, c.numericLiteral, c.numeric, c.intervalLiteral, c.interval.Text, floatLiteral(c.float)).Scan(&exact, &got)
					if err != nil {
						t.Fatal(err)
					}
					if !exact {
						t.Fatalf("%c: row %d is %.400s; want numeric %.40s (text %.40s), interval %s (text %s)", step.op, id, got,
							c.numericLiteral, c.numeric, c.intervalLiteral, c.interval.Text)
					}
				}
			}
		})
	}
}
