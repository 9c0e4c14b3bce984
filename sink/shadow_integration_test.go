//go:build integration

package sink

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
)

// A shadow made by CreateLike and swapped in by Swap has the table's
// definition, index and constraint names and grants; a table that a view,
// a foreign key or a trigger ties to its oid is refused by CheckSwappable.
func TestIntegrationShadowSwap(t *testing.T) {
	ctx := context.Background()
	pool := ddlPool(t)
	live := config.TableName{Schema: "public", Name: `Acc "x"`}
	shadow := config.TableName{Schema: "public", Name: live.Name + "__pgsink_shadow"}
	old := config.TableName{Schema: "public", Name: live.Name + "__pgsink_old"}
	for _, sql := range []string{
		`CREATE TABLE public."Acc ""x""" (id integer PRIMARY KEY, v integer NOT NULL CHECK (v > 0), w text UNIQUE)`,
		`CREATE INDEX "Acc v" ON public."Acc ""x""" (v) WHERE v > 10`,
		`GRANT SELECT ON public."Acc ""x""" TO PUBLIC`,
		`INSERT INTO public."Acc ""x""" VALUES (1, 1, 'old')`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckSwappable(ctx, pool, live); err != nil {
		t.Fatalf("CheckSwappable: %v; want none", err)
	}
	if err := CreateLike(ctx, pool, shadow, live); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO public."Acc ""x""__pgsink_shadow" VALUES (2, 2, 'new')`); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return Swap(ctx, tx, live, shadow, old) }); err != nil {
		t.Fatal(err)
	}
	var rows, indexes, constraints, acl string
	err := pool.QueryRow(ctx, `SELECT (SELECT string_agg(w, ',') FROM public."Acc ""x"""),
		(SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'public."Acc ""x"""'::regclass),
		(SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'public."Acc ""x"""'::regclass),
		(SELECT array_to_string(relacl, ',') FROM pg_class WHERE oid = 'public."Acc ""x"""'::regclass)`).Scan(&rows, &indexes, &constraints, &acl)
	if err != nil {
		t.Fatal(err)
	}
	if rows != "new" || indexes != `"Acc ""x""_pkey","Acc ""x""_w_key","Acc v"` || constraints != `Acc "x"_pkey,Acc "x"_v_check,Acc "x"_w_key` || !strings.Contains(acl, "=r/") {
		t.Fatalf("after the swap: rows %q, indexes %s, constraints %s, grants %s; want the shadow's row under the table's names and grants", rows, indexes, constraints, acl)
	}
	if !tableExists(t, pool, ident(old)) {
		t.Fatalf("%s missing after the swap", old)
	}

	for _, tie := range []struct{ sql, reason string }{
		{`CREATE VIEW public.v AS SELECT * FROM public."Acc ""x"""`, "view or rule v"},
		{`CREATE TABLE public.child (id integer REFERENCES public."Acc ""x""")`, "foreign key child_id_fkey"},
		{`CREATE FUNCTION public.nop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; CREATE TRIGGER nop BEFORE INSERT ON public."Acc ""x""" FOR EACH ROW EXECUTE FUNCTION public.nop()`, "trigger nop"},
	} {
		if _, err := pool.Exec(ctx, tie.sql); err != nil {
			t.Fatal(err)
		}
		var blocked *SwapBlockedError
		if err := CheckSwappable(ctx, pool, live); !errors.As(err, &blocked) || !strings.Contains(err.Error(), tie.reason) {
			t.Errorf("CheckSwappable after %q: %v; want a SwapBlockedError naming %q", tie.sql, err, tie.reason)
		}
	}
}
