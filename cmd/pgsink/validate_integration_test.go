//go:build integration

package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationValidateCatalog runs validate against a real target whose
// tables match the configuration in some ways and not in others, and checks
// the exact problems listed.
func TestIntegrationValidateCatalog(t *testing.T) {
	targetURL := stacktest.TargetDatabase(t,
		`CREATE SCHEMA "Sales; Dept"`,
		`CREATE TABLE "Sales; Dept"."Order Lines" (
			id bigint PRIMARY KEY, "SKU" text, qty int,
			_pgsink_commit_lsn bigint, _pgsink_lsn bigint)`,
		`CREATE TABLE public.customers (id bigint, name text, _pgsink_commit_lsn bigint, _pgsink_lsn text)`,
		`CREATE TABLE public.orders (order_id uuid PRIMARY KEY, status text NOT NULL, note text NOT NULL,
			_pgsink_commit_lsn bigint, _pgsink_lsn bigint)`,
		`GRANT USAGE ON SCHEMA "Sales; Dept" TO pgsink`,
		`GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA "Sales; Dept" TO pgsink`,
		`GRANT SELECT, INSERT, UPDATE ON public.customers, public.orders TO pgsink`,
		`CREATE SCHEMA pgsink AUTHORIZATION pgsink`, // pgsink run migrates its tables there at start
	)
	t.Setenv("PGSINK_DATABASE_URL", targetURL)
	good := writeConfig(t, `kafka: { bootstrap.servers: 127.0.0.1:9092, group.id: sink }
postgres:
  url: ${PGSINK_DATABASE_URL}
tables:
  - topic: app.sales.lines
    target: '"Sales; Dept"."Order Lines"'
    key: [id]
    columns: { rename: { sku: SKU } }
`)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "--config", good}, &stdout, &stderr); code != 0 {
		t.Fatalf("a configuration matching the target: exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}

	bad := writeConfig(t, `kafka: { bootstrap.servers: 127.0.0.1:9092, group.id: sink }
postgres:
  url: ${PGSINK_DATABASE_URL}
tables:
  - topic: app.sales.lines
    target: '"Sales; Dept"."Order Lines"'
    key: [sku]
    columns: { rename: { sku: SKU, amount: qty_total } }
  - topic: app.public.customers
    target: public.customers
  - topic: outbox.event.Order
    format: outbox
    target: public.orders
    key: [order_id]
    payload: { order_id: $.id, state: $.status }
  - topic: app.public.missing
    target: public.missing
`)
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"validate", "--config", bad}, &stdout, &stderr)
	want := []string{
		`:7: tables[0].key[0]: column "sku" does not exist in "Sales; Dept"."Order Lines"`,
		`:8: tables[0].columns.rename.amount: column "qty_total" does not exist in "Sales; Dept"."Order Lines"`,
		`:9: tables[1].key: "public"."customers" has no primary key or unique index, which upserts need`,
		`:9: tables[1].version.lsn_column: column "_pgsink_lsn" of "public"."customers" is text; a version column must be bigint`,
		`:10: tables[1].target: role "pgsink" lacks DELETE on "public"."customers" (for deletes: hard and truncate: apply)`,
		`:15: tables[2].payload: does not map column "status" of "public"."orders", which is NOT NULL without a default`,
		`:15: tables[2].payload: does not map column "note" of "public"."orders", which is NOT NULL without a default`,
		`:15: tables[2].payload.state: column "state" does not exist in "public"."orders"`,
		`:17: tables[3].target: table "public"."missing" does not exist (create it, or set schema.create: true)`,
	}
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	var wantOut strings.Builder
	for _, w := range want {
		wantOut.WriteString(bad + w + "\n")
	}
	if stdout.String() != wantOut.String() {
		t.Errorf("problems, in line order:\ngot:\n%s\nwant:\n%s", stdout.String(), wantOut.String())
	}
}

// TestIntegrationValidatePgsinkTables: validate reports what stops the role
// from migrating pgsink's own tables at start (as run does) or, with
// --no-migrate, from using the tables an owner migrated — and nothing once
// the role may.
func TestIntegrationValidatePgsinkTables(t *testing.T) {
	ctx := context.Background()
	targetURL := stacktest.TargetDatabase(t, `CREATE TABLE public.items (id bigint PRIMARY KEY, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO pgsink`)
	t.Setenv("PGSINK_DATABASE_URL", targetURL)
	cfg := writeConfig(t, `kafka: { bootstrap.servers: 127.0.0.1:9092, group.id: sink }
postgres:
  url: ${PGSINK_DATABASE_URL}
tables:
  - topic: app.public.items
    target: public.items
`)
	validate := func(args ...string) string {
		var stdout, stderr bytes.Buffer
		run(append([]string{"validate", "--config", cfg}, args...), &stdout, &stderr)
		return stdout.String()
	}
	if out := validate(); !strings.Contains(out, `postgres.schema: role "pgsink" lacks CREATE on database`) {
		t.Fatalf("a role that cannot create pgsink's schema:\n%s", out)
	}
	if out := validate("--no-migrate"); !strings.Contains(out, `postgres.schema: schema "pgsink" does not exist: run pgsink migrate up`) {
		t.Fatalf("--no-migrate before any migration:\n%s", out)
	}

	// An owner migrates; the role has no grant on the tables yet.
	env, err := stacktest.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	adminURL, err := stacktest.WithDatabase(env.AdminURL, strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dedup.NewMigrator(adminURL, "pgsink").Up(ctx); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--no-migrate"}} {
		out := validate(args...)
		if !strings.Contains(out, `role "pgsink" lacks USAGE on schema "pgsink"`) {
			t.Fatalf("validate %v on an owner's schema without grants:\n%s", args, out)
		}
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `GRANT USAGE ON SCHEMA pgsink TO pgsink`); err != nil {
		t.Fatal(err)
	}
	if out := validate("--no-migrate"); !strings.Contains(out, `role "pgsink" lacks SELECT on "pgsink".schema_migrations`) {
		t.Fatalf("--no-migrate without a grant on the version table:\n%s", out)
	}
	if _, err := admin.Exec(ctx, `GRANT SELECT ON pgsink.schema_migrations TO pgsink`); err != nil {
		t.Fatal(err)
	}
	if out := validate("--no-migrate"); !strings.Contains(out, `role "pgsink" lacks DELETE on pgsink.dead_letters`) ||
		!strings.Contains(out, `role "pgsink" lacks SELECT on pgsink.offsets`) {
		t.Fatalf("--no-migrate without table grants:\n%s", out)
	}
	if _, err := admin.Exec(ctx, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgsink TO pgsink`); err != nil {
		t.Fatal(err)
	}
	if out := validate("--no-migrate"); out != cfg+": valid, 1 table(s) (target catalog checked)\n" {
		t.Fatalf("--no-migrate with the grants the role recipe gives:\n%s", out)
	}
	if out := validate(); out != cfg+": valid, 1 table(s) (target catalog checked)\n" {
		t.Fatalf("the tables current, the role granted: run needs no migration:\n%s", out)
	}
}
