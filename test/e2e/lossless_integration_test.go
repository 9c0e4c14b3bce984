//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// losslessValues are the numerics and intervals that Debezium's defaults
// lose (NaN as null, months folded into days) and the shipped connector
// settings carry: one per row, cycled.
var losslessValues = []struct{ numeric, interval string }{
	{"'NaN'", "'1 year 2 mons 3 days 04:05:06.789'"},
	{"'Infinity'", "'-1 year -2 mons +3 days -04:05:06.000001'"},
	{"'-Infinity'", "'-178000000 years'"},
	{"12345 * 1e-1000", "'1 mon -1 day 1.5 sec'"},
	{"'99999999999999999999999999999999999999.99999999999999999999'", "'0'"},
	{"-1.5", "'178000000 years 11 mons'"},
}

// losslessColumns are the source table's columns; the target's have the
// same names, with text for n_text and iv_text, which take the values as
// Debezium sent them.
const losslessColumns = `(id integer PRIMARY KEY, n numeric, n12 numeric(60,20), n_text numeric, m money,
	iv interval, iv_text interval)`

// TestE2ELosslessSettings streams, under the shipped connector settings
// (docker/connectors/demo-tables.json), numeric NaN, ±Infinity, a scale of
// 1,000 and a precision of 58 digits, and intervals with every part and
// negative ones, in a snapshot and in a stream: first in a large batch
// (binary COPY), then row by row (bound parameters). The target must equal
// the source value for value — numeric and interval columns exactly, text
// columns as Debezium sent them — with no retry, no split, no dead letter.
func TestE2ELosslessSettings(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.exact ` + losslessColumns)
	insert := func(from, to int) {
		var rows []string
		for id := from; id <= to; id++ {
			v := losslessValues[id%len(losslessValues)]
			money := "NULL"
			if id%len(losslessValues) == 5 {
				money = "-12.34"
			}
			rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s, %s)", id, v.numeric,
				map[bool]string{true: "123.45678901234567890123", false: "NULL"}[id%2 == 0], v.numeric, money, v.interval, v.interval))
		}
		st.Exec(`INSERT INTO public.exact VALUES ` + strings.Join(rows, ", "))
	}
	insert(1, 12) // read by the snapshot
	st.RegisterDebezium("exact", map[string]string{"table.include.list": "public.exact"})
	insert(13, 300)
	// Every record is in Kafka before pgsink starts, so its first batches
	// are large and written by COPY.
	st.ReadUntil(90*time.Second, func(rs []recording.Record) bool { return len(rs) >= 300 })

	port := freePort(t)
	targetURL, target := targetWith(t, `CREATE TABLE public.exact (id integer PRIMARY KEY, n numeric, n12 numeric(60,20), n_text text,
		m money, iv interval, iv_text text, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`)
	startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
apply:
  batch: { max_records: 1000, max_wait: 500ms }
metrics:
  listen: 127.0.0.1:%d
tables:
  - topic: %s.public.exact
    target: public.exact
`, st.Env.KafkaBootstrap, st.ID, port, st.TopicPrefix), "TARGET_URL="+targetURL)

	// Each side rendered as text: numeric's keeps the scale, interval's
	// keeps months, days and time apart (= would compare them justified).
	// n_text holds Debezium's text of the numeric; iv_text its ISO-8601
	// duration, which PostgreSQL reads back as the same interval.
	sourceQuery := `SELECT id, n::text, n12::text, CASE n WHEN 'NaN' THEN 'NAN' WHEN 'Infinity' THEN 'POSITIVE_INFINITY'
		WHEN '-Infinity' THEN 'NEGATIVE_INFINITY' ELSE n::text END AS n_text, m::text, iv::text, iv::text AS iv_text FROM public.exact ORDER BY id`
	targetQuery := `SELECT id, n::text, n12::text, n_text, m::text, iv::text,
		CASE WHEN iv_text LIKE 'P%' THEN iv_text::interval::text END AS iv_text FROM public.exact ORDER BY id`
	converged := func(what string) {
		t.Helper()
		eventually(t, 90*time.Second, what, func() (bool, string) {
			src, dst := checksum(t, st.SourceURL, sourceQuery), checksum(t, targetURL, targetQuery)
			return src == dst, fmt.Sprintf("source %s, target %s; first difference: %s", src, dst, firstDifference(t, st.SourceURL, sourceQuery, targetURL, targetQuery))
		})
	}
	converged("the snapshot and the large batch applied exactly")
	noFallback(t, port, target)

	// Row by row: each a small batch, staged with bound parameters.
	for id := 301; id <= 306; id++ {
		insert(id, id)
	}
	converged("single rows applied exactly")
	noFallback(t, port, target)
}

// noFallback fails the test if any transaction was retried, split or
// applied again with upserts only, or any record went to the dead letters.
func noFallback(t *testing.T, port int, target *pgx.Conn) {
	t.Helper()
	for _, name := range []string{"pgsink_apply_retries_total", `pgsink_apply_splits_total{table="public.exact"}`,
		`pgsink_insert_conflicts_total{table="public.exact"}`} {
		// A labelled counter appears only once counted: absent is 0.
		if v, ok := metricValue(port, name); ok && v != 0 {
			t.Errorf("%s = %v, want 0: no value may need a way around the one it was sent by", name, v)
		}
	}
	if _, ok := metricValue(port, "pgsink_apply_retries_total"); !ok {
		t.Errorf("pgsink_apply_retries_total not served: the metrics were not read")
	}
	var dead int
	var reasons string
	if err := target.QueryRow(context.Background(), `SELECT count(*), coalesce(string_agg(error, '; '), '') FROM pgsink.dead_letters`).Scan(&dead, &reasons); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Errorf("%d dead letters (%s), want none", dead, reasons)
	}
}

// firstDifference names the first row where two queries' results differ.
func firstDifference(t *testing.T, urlA, queryA, urlB, queryB string) string {
	t.Helper()
	rowsOf := func(url, query string) []string {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var out []string
		if err := conn.QueryRow(context.Background(), `SELECT coalesce(array_agg(row_to_json(q)::text), '{}') FROM (`+query+`) q`).Scan(&out); err != nil {
			return []string{err.Error()}
		}
		return out
	}
	a, b := rowsOf(urlA, queryA), rowsOf(urlB, queryB)
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return "extra target row " + b[i]
		case i >= len(b):
			return "missing target row " + a[i]
		case a[i] != b[i]:
			return fmt.Sprintf("source %.300s, target %.300s", a[i], b[i])
		}
	}
	return "none"
}
