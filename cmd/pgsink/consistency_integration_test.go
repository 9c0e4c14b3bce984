//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
	"go.uber.org/zap"
)

// TestIntegrationModeSwitchRefused: a pipeline's stored state of one
// apply.consistency refuses a start in the other where that would lose or
// stall data, and only there.
func TestIntegrationModeSwitchRefused(t *testing.T) {
	ctx := context.Background()
	pool := migratedTarget(t)
	parse := func(consistency string) *config.Config {
		cfg, err := config.Parse("pgsink.yaml", []byte(fmt.Sprintf(`kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
apply: { consistency: %s, transaction: { topic: app.transaction } }
tables:
  - topic: app.public.t
    target: public.t
`, consistency)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	partition, transaction := parse("partition"), parse("transaction")
	offsets := dedup.NewOffsets("pgsink")
	claim := func(topic string) {
		t.Helper()
		if _, err := offsets.Claim(ctx, pool, dedup.PartitionID{Group: "g", Topic: topic, Partition: 0}, 0, "test"); err != nil {
			t.Fatal(err)
		}
	}
	// A new group in transaction mode; a second instance starts while the
	// first has claimed data partitions and not yet the transaction topic's.
	if err := checkModeSwitch(ctx, pool, transaction); err != nil {
		t.Fatalf("a new pipeline in transaction mode: %v", err)
	}
	claim("app.public.t")
	if err := checkModeSwitch(ctx, pool, transaction); err != nil {
		t.Fatalf("a second instance of a pipeline in transaction mode: %v", err)
	}
	b := &pgx.Batch{}
	if _, err := dedup.NewTransactions("pgsink").QueueStage(b, "g", []dedup.StagedRecord{{TxID: 1, TotalOrder: 1, DataCollection: "public.t", Topic: "app.public.t"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := checkModeSwitch(ctx, pool, partition); err == nil || !strings.Contains(err.Error(), "1 records of source transactions are staged for group g") {
		t.Fatalf("partition mode with records staged: %v, want a refusal", err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM pgsink.tx_staged`); err != nil {
		t.Fatal(err)
	}
	if err := checkModeSwitch(ctx, pool, partition); err != nil {
		t.Fatalf("partition mode once nothing is staged: %v", err)
	}
	if err := checkModeSwitch(ctx, pool, transaction); err == nil || !strings.Contains(err.Error(), "group g has positions from a run in partition mode") {
		t.Fatalf("transaction mode after partition mode: %v, want a refusal", err)
	}
	if err := checkModeSwitch(ctx, pool, partition); err != nil {
		t.Fatalf("partition mode again: %v", err)
	}
}

// TestIntegrationValidateTransactionTopic: validate checks that the
// transaction topic exists with one partition, before any data flows.
func TestIntegrationValidateTransactionTopic(t *testing.T) {
	env, err := stacktest.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	url := stacktest.OwnedTargetDatabase(t)
	prefix := stacktest.NewID("txtopic")
	path := writeConfig(t, fmt.Sprintf(`kafka: { bootstrap.servers: %s, group.id: g }
postgres: { url: '%s', schema: pgsink }
apply: { consistency: transaction, transaction: { topic: %s.transaction } }
tables:
  - topic: %s.public.t
    target: public.t
    schema: { create: true }
`, env.KafkaBootstrap, url, prefix, prefix))
	t.Cleanup(func() { _ = stacktest.DeleteTopics(context.Background(), env.KafkaBootstrap, prefix+".") })
	validate := func() string {
		var stdout, stderr bytes.Buffer
		run([]string{"validate", "--config", path}, &stdout, &stderr)
		return stdout.String() + stderr.String()
	}
	if out := validate(); !strings.Contains(out, "apply.transaction.topic: apply.transaction.topic "+prefix+".transaction does not exist") {
		t.Fatalf("validate with no transaction topic:\n%s", out)
	}
	if err := stacktest.CreateTopic(context.Background(), env.KafkaBootstrap, prefix+".transaction", 2); err != nil {
		t.Fatal(err)
	}
	if out := validate(); !strings.Contains(out, "has 2 partitions; it needs exactly one") {
		t.Fatalf("validate with a transaction topic of 2 partitions:\n%s", out)
	}
}

// TestIntegrationStagingPersistence: run makes tx_staged, and the staging
// marker with it, as apply.transaction.staging says while its group is the
// schema's only one in transaction mode, keeps the staged rows through the
// change, and
// refuses a group whose setting differs from the table once another group
// of the schema ran in transaction mode, naming it, rather than turn the
// shared table back and forth.
func TestIntegrationStagingPersistence(t *testing.T) {
	ctx := context.Background()
	pool := migratedTarget(t)
	parse := func(group, staging string) *config.Config {
		cfg, err := config.Parse("pgsink.yaml", []byte(fmt.Sprintf(`kafka: { bootstrap.servers: k, group.id: %s }
postgres: { url: u }
apply: { consistency: transaction, transaction: { topic: app.transaction, staging: %s } }
tables:
  - topic: app.public.t
    target: public.t
`, group, staging)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tx := dedup.NewTransactions("pgsink")
	start := func(cfg *config.Config) error {
		t.Helper()
		if err := checkModeSwitch(ctx, pool, cfg); err != nil {
			t.Fatal(err)
		}
		return applyStaging(ctx, pool, cfg, zap.NewNop())
	}
	// tx_staged's persistence, checked against the marker's: a start
	// that leaves them different fails the test.
	persistence := func() bool {
		t.Helper()
		p, err := tx.StagingPersistence(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if p.MarkerUnlogged != p.StagedUnlogged {
			t.Fatalf("after a start, tx_staged unlogged %v and tx_staging_marker unlogged %v; want the marker as the table", p.StagedUnlogged, p.MarkerUnlogged)
		}
		return p.StagedUnlogged
	}
	b := &pgx.Batch{}
	if _, err := tx.QueueStage(b, "g", []dedup.StagedRecord{{TxID: 1, TotalOrder: 1, DataCollection: "public.t", Topic: "app.public.t"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	// A new schema's marker is logged after the first start, as tx_staged
	// is (migration 0013 made it unlogged).
	if err := start(parse("g", "logged")); err != nil || persistence() {
		t.Fatalf("group g alone with staging: logged: %v, tx_staged unlogged %v; want it logged", err, persistence())
	}
	if err := start(parse("g", "unlogged")); err != nil || !persistence() {
		t.Fatalf("group g alone with staging: unlogged: %v, tx_staged unlogged %v; want it altered", err, persistence())
	}
	var staged int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&staged); err != nil || staged != 1 {
		t.Errorf("staged rows after the ALTER: %d (%v), want the 1 staged before", staged, err)
	}
	if err := start(parse("g", "unlogged")); err != nil || !persistence() {
		t.Fatalf("group g again: %v", err)
	}
	if err := start(parse("h", "logged")); err == nil || !strings.Contains(err.Error(), "[g]") || !persistence() {
		t.Fatalf("group h with staging: logged beside g: %v, tx_staged unlogged %v; want a refusal naming g and the table unchanged", err, persistence())
	} else if want := `BEGIN; ALTER TABLE "pgsink"."tx_staged" SET LOGGED; ALTER TABLE "pgsink"."tx_staging_marker" SET LOGGED; COMMIT;`; !strings.Contains(err.Error(), want) {
		t.Errorf("the refusal's statement to run by hand is not quoted as pgsink quotes identifiers (want %s): %v", want, err)
	}
	if err := start(parse("h", "unlogged")); err != nil {
		t.Fatalf("group h with the table's setting: %v", err)
	}
	if err := start(parse("g", "logged")); err == nil || !strings.Contains(err.Error(), "[h]") || !persistence() {
		t.Fatalf("group g back to logged beside h: %v; want a refusal naming h", err)
	}
}

// TestIntegrationStagingMarkerMatched: run makes the staging marker as
// tx_staged whatever other groups share the schema: logged beside a logged
// table (no rewind at a crash that keeps it), and unlogged beside an
// unlogged one; a logged marker found beside an unlogged table (altered
// alone, by hand) may have outlived a crash that emptied the table, so the
// start also empties it, a reset every partition that staged then sees.
func TestIntegrationStagingMarkerMatched(t *testing.T) {
	ctx := context.Background()
	pool := migratedTarget(t)
	parse := func(group, staging string) *config.Config {
		cfg, err := config.Parse("pgsink.yaml", []byte(fmt.Sprintf(`kafka: { bootstrap.servers: k, group.id: %s }
postgres: { url: u }
apply: { consistency: transaction, transaction: { topic: app.transaction, staging: %s } }
tables:
  - topic: app.public.t
    target: public.t
`, group, staging)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	tx := dedup.NewTransactions("pgsink")
	start := func(cfg *config.Config) {
		t.Helper()
		if err := checkModeSwitch(ctx, pool, cfg); err != nil {
			t.Fatal(err)
		}
		if err := applyStaging(ctx, pool, cfg, zap.NewNop()); err != nil {
			t.Fatalf("start of group %s: %v", cfg.Kafka["group.id"], err)
		}
	}
	persistence := func() dedup.Persistence {
		t.Helper()
		p, err := tx.StagingPersistence(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p := persistence(); p.StagedUnlogged || !p.MarkerUnlogged {
		t.Fatalf("after the migrations: %+v; want tx_staged logged and the marker unlogged, as 0013 makes them", p)
	}
	// Another group ran in transaction mode: the table is not altered for
	// g, the marker is.
	if err := checkModeSwitch(ctx, pool, parse("h", "logged")); err != nil {
		t.Fatal(err)
	}
	start(parse("g", "logged"))
	if p := persistence(); p.StagedUnlogged || p.MarkerUnlogged {
		t.Fatalf("after a start in logged mode beside group h: %+v; want both logged", p)
	}
	gen, reset, err := tx.SyncGeneration(ctx, pool)
	if err != nil || reset || gen != 1 {
		t.Fatalf("SyncGeneration after the marker was made logged = %d, %v, %v; want generation 1 and no reset (the ALTER keeps the row)", gen, reset, err)
	}

	// tx_staged altered alone, as pgsink told operators to before.
	if _, err := pool.Exec(ctx, `ALTER TABLE pgsink.tx_staged SET UNLOGGED`); err != nil {
		t.Fatal(err)
	}
	if p := persistence(); p.Safe() {
		t.Fatalf("tx_staged altered alone: %+v; the test wants the unsafe state", p)
	}
	start(parse("g", "unlogged"))
	if p := persistence(); !p.StagedUnlogged || !p.MarkerUnlogged {
		t.Fatalf("after a start that found the marker logged beside an unlogged table: %+v; want both unlogged", p)
	}
	if gen, reset, err := tx.SyncGeneration(ctx, pool); err != nil || !reset || gen != 2 {
		t.Fatalf("SyncGeneration after the start found the marker logged beside an unlogged table = %d, %v, %v; want a reset to generation 2", gen, reset, err)
	}
	// Matched now: a start changes nothing more.
	start(parse("g", "unlogged"))
	if gen, reset, err := tx.SyncGeneration(ctx, pool); err != nil || reset || gen != 2 {
		t.Fatalf("SyncGeneration after a start with both unlogged = %d, %v, %v; want generation 2, no reset", gen, reset, err)
	}
}

// migratedTarget is a pool on a target database of the test's own with
// pgsink's tables migrated, closed at the test's end.
func migratedTarget(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(url, "pgsink").Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
