//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
)

// fleet is many target tables written by one applier over one connection,
// so that the session's state is what a connection of an instance writing
// that many tables accumulates.
type fleet struct {
	t       *testing.T
	one     *pgxpool.Pool
	applier *sink.Applier
	tables  []*sink.Table
	claim   *dedup.Claim
	version int64
}

// newFleet creates n tables whose names need quoting and an applier over
// one connection that keeps at most stages staging tables and pgx's
// statement cache at most statements prepared statements.
func newFleet(t *testing.T, n, stages, statements int) *fleet {
	t.Helper()
	ctx := context.Background()
	pool := migratedPool(t)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA "Fleet ""x"""`); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t}
	for i := range n {
		tbl := &sink.Table{Schema: `Fleet "x"`, Name: fmt.Sprintf("T %d; DROP", i),
			Columns: []sink.Column{{Name: "Id", Source: "id", Type: "bigint"}, {Name: "v", Source: "v", Type: "text"}},
			Key:     []string{"Id"}, Deletes: sink.DeleteHard, CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn"}
		if err := tbl.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "CREATE TABLE "+tbl.Ident()+` ("Id" bigint PRIMARY KEY, v text, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`); err != nil {
			t.Fatal(err)
		}
		f.tables = append(f.tables, tbl)
	}
	claim, err := dedup.NewOffsets(schema).Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: "fleet", Partition: 0}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	f.claim = &claim
	cfg := pool.Config().Copy()
	cfg.MaxConns = 1
	cfg.ConnConfig.StatementCacheCapacity = statements
	f.one, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.one.Close)
	f.applier = sink.NewApplier(f.one, sink.Options{Schema: schema, StagingTablesPerConnection: stages})
	return f
}

// change is one event for table i: an upsert of id to v, or its delete
// when v is empty.
type change struct {
	table int
	id    int64
	v     string
}

// apply applies the changes as one batch: one transaction.
func (f *fleet) apply(changes ...change) {
	f.t.Helper()
	b := &sink.Batch{Claim: f.claim}
	for k, c := range changes {
		f.version++
		offset := f.claim.NextOffset + int64(k)
		ch := debezium.Change{Topic: "fleet", Offset: offset, Kind: debezium.KindChange, Op: debezium.OpCreate,
			Key: debezium.Row{{Name: "id", Value: c.id}}, Version: debezium.Version{CommitLSN: f.version, LSN: f.version}}
		if c.v == "" {
			ch.Op = debezium.OpDelete
		} else {
			ch.After = debezium.Row{{Name: "id", Value: c.id}, {Name: "v", Value: c.v}}
		}
		b.Items = append(b.Items, sink.Item{Table: f.tables[c.table], Change: ch, Record: debezium.Record{Topic: "fleet", Offset: offset}})
		b.Next = offset + 1
	}
	if _, err := f.applier.Apply(context.Background(), b); err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
}

// sessionState is the server-side state of the applier's one session.
type sessionState struct {
	stages, prepared int64
}

func (f *fleet) session() sessionState {
	f.t.Helper()
	var s sessionState
	err := f.one.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r'),
		(SELECT count(*) FROM pg_prepared_statements)`,
		pgx.QueryExecModeSimpleProtocol).Scan(&s.stages, &s.prepared)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// rows renders table i's rows, by key.
func (f *fleet) rows(i int) string {
	f.t.Helper()
	rows, err := f.one.Query(context.Background(), `SELECT "Id", v FROM `+f.tables[i].Ident()+` ORDER BY 1`, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		f.t.Fatal(err)
	}
	var out string
	var id int64
	var v string
	_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out += fmt.Sprintf("%d:%s ", id, v)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// An instance writing many tables over one connection keeps at most
// postgres.staging_tables_per_connection staging tables and at most pgx's
// statement cache capacity of prepared statements in that session, after
// batches of one table each and after one transaction writing more tables
// than the bound; every row is still right.
func TestIntegrationManyTablesOnAConnectionStayBounded(t *testing.T) {
	const tables, stages, statements = 200, 16, 64
	f := newFleet(t, tables, stages, statements)
	check := func(when string) {
		t.Helper()
		s := f.session()
		t.Logf("%s: %d staging tables, %d prepared statements", when, s.stages, s.prepared)
		if s.stages > stages {
			t.Errorf("%s: %d staging tables in the session, want at most %d", when, s.stages, stages)
		}
		if s.prepared > statements {
			t.Errorf("%s: %d prepared statements in the session, want at most %d", when, s.prepared, statements)
		}
	}
	for i := range tables {
		f.apply(change{i, 1, "one"}, change{i, 2, "two"}, change{i, 3, "three"})
	}
	check("after a batch to each of 200 tables")
	// One transaction writing 40 tables, more than the bound: it keeps
	// its stages until its statements ran, and drops them before COMMIT.
	var wide []change
	for i := range 40 {
		wide = append(wide, change{i, 1, "updated"}, change{i, 2, ""})
	}
	f.apply(wide...)
	check("after one transaction writing 40 tables")
	// The tables whose stages were dropped are written again: recreated.
	for i := range tables {
		f.apply(change{i, 4, "four"})
	}
	check("after a second batch to each table")
	for i := range tables {
		want := "1:one 2:two 3:three 4:four "
		if i < 40 {
			want = "1:updated 3:three 4:four "
		}
		if got := f.rows(i); got != want {
			t.Errorf("table %d holds %q, want %q", i, got, want)
		}
	}
}

// What one connection of an instance writing 500 tables holds on the
// server at the defaults: staging tables, prepared statements, and, when
// PostgreSQL runs on this host, its backend's private memory (RssAnon).
// docs/scaling.md quotes the figures, and others measured with
// PGSINK_COST_STAGES and PGSINK_COST_STATEMENTS overriding
// postgres.staging_tables_per_connection and pgx's statement_cache_capacity.
func TestIntegrationFleetSessionCost(t *testing.T) {
	const tables = 500
	stages := envInt(t, "PGSINK_COST_STAGES", config.DefaultStagingTables)
	statements := envInt(t, "PGSINK_COST_STATEMENTS", 512) // pgx's default
	f := newFleet(t, tables, stages, statements)
	var pid int
	if err := f.one.QueryRow(context.Background(), "SELECT pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for i := range tables {
			f.apply(change{i, int64(2*round + 1), "a"}, change{i, int64(2*round + 2), "b"})
		}
		s := f.session()
		t.Logf("%d tables, bounds %d stages and %d statements, round %d: %d staging tables, %d prepared statements; backend %s",
			tables, stages, statements, round+1, s.stages, s.prepared, backendMemory(pid))
		if s.stages > int64(min(stages, tables)) || s.prepared > int64(statements) {
			t.Errorf("%d staging tables and %d prepared statements, want at most %d and %d", s.stages, s.prepared, min(stages, tables), statements)
		}
	}
	for i := range tables {
		if got, want := f.rows(i), "1:a 2:b 3:a 4:b "; got != want {
			t.Fatalf("table %d holds %q, want %q", i, got, want)
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// backendMemory reads a local backend's resident and private memory, or
// says it cannot.
func backendMemory(pid int) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "memory unknown (PostgreSQL is not on this host)"
	}
	var out []string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "RssAnon:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}
