package catalog

import (
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/pgsink/pgsink/config"
)

// loadTable parses a one-table configuration and returns that table.
func loadTable(t *testing.T, table string) config.Table {
	t.Helper()
	src := "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\ntables:\n" + table
	cfg, err := config.Parse("test.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the test's configuration must be valid, got:\n%v", err)
	}
	return cfg.Tables[0]
}

// customers is a target with everything a default table configuration needs.
func customers() *Table {
	return &Table{
		Schema: "public", Name: "customers", Role: "pgsink",
		SchemaExists: true, SchemaUsage: true, Exists: true, Kind: "r",
		Columns: []Column{
			{Name: "id", Type: "bigint", TypeOID: pgtype.Int8OID, NotNull: true},
			{Name: "name", Type: "text", TypeOID: pgtype.TextOID},
			{Name: "email", Type: "text", TypeOID: pgtype.TextOID},
			{Name: "__deleted", Type: "boolean", TypeOID: pgtype.BoolOID},
			{Name: "search", Type: "tsvector", Generated: true},
			{Name: "_pgsink_commit_lsn", Type: "bigint", TypeOID: pgtype.Int8OID},
			{Name: "_pgsink_lsn", Type: "bigint", TypeOID: pgtype.Int8OID},
		},
		PrimaryKey: []string{"id"},
		UniqueKeys: [][]string{{"email"}},
		Privileges: Privileges{Select: true, Insert: true, Update: true, Delete: true, Truncate: true},
	}
}

func TestCheck(t *testing.T) {
	const base = "  - topic: a\n    target: public.customers\n"
	tests := []struct {
		name   string
		table  string
		target func(*Table)
		want   []string // "path: message" prefixes, all and only these
	}{
		{name: "matches", table: base + "    key: [id]\n    columns: { rename: { fullname: name } }\n"},
		{name: "unique index as key", table: base + "    key: [email]\n"},
		{name: "no key configured, table has one", table: base},
		{name: "no key at all", table: base, target: func(t *Table) { t.PrimaryKey, t.UniqueKeys = nil, nil },
			want: []string{`tables[0].key: "public"."customers" has no primary key or unique index, which upserts need`}},
		{name: "key not unique", table: base + "    key: [name]\n",
			want: []string{`tables[0].key: [name] is neither the primary key nor a unique index of "public"."customers" (upserts need one); it has primary key [id], unique [email]`}},
		{name: "key column missing", table: base + "    key: [id, tenant]\n",
			want: []string{`tables[0].key[1]: column "tenant" does not exist in "public"."customers"`}},
		{name: "schema missing", table: base, target: func(t *Table) { *t = Table{Schema: "public", Name: "customers", Role: "pgsink"} },
			want: []string{`tables[0].target: schema "public" does not exist`}},
		{name: "no usage", table: base, target: func(t *Table) { t.SchemaUsage = false },
			want: []string{`tables[0].target: role "pgsink" lacks USAGE on schema "public"`}},
		{name: "table missing", table: base, target: func(t *Table) { t.Exists = false },
			want: []string{`tables[0].target: table "public"."customers" does not exist (create it, or set schema.create: true)`}},
		{name: "table missing, create allowed", table: base + "    schema: { create: true }\n", target: func(t *Table) { t.Exists, t.SchemaCreate = false, true }},
		{name: "table missing, create not permitted", table: base + "    schema: { create: true }\n", target: func(t *Table) { t.Exists = false },
			want: []string{`tables[0].schema.create: role "pgsink" lacks CREATE on schema "public", needed to create "public"."customers"`}},
		{name: "a view", table: base, target: func(t *Table) { t.Kind = "v" },
			want: []string{`tables[0].target: "public"."customers" is not a table (relkind "v")`}},
		{name: "privileges", table: base, target: func(t *Table) { t.Privileges = Privileges{Insert: true} },
			want: []string{
				`tables[0].target: role "pgsink" lacks UPDATE on "public"."customers" (for upserts)`,
				`tables[0].target: role "pgsink" lacks SELECT on "public"."customers" (to compare versions and keys)`,
				`tables[0].target: role "pgsink" lacks DELETE on "public"."customers" (for deletes: hard and truncate: apply)`,
			}},
		{name: "truncate applied by DELETE, not TRUNCATE", table: base + "    deletes: ignore\n", target: func(t *Table) { t.Privileges.Delete = false },
			want: []string{`tables[0].target: role "pgsink" lacks DELETE on "public"."customers" (for truncate: apply, which deletes the rows older than the truncate)`}},
		{name: "TRUNCATE itself is never needed", table: base, target: func(t *Table) { t.Privileges.Truncate = false }},
		{name: "no delete or truncate needed", table: base + "    deletes: ignore\n    truncate: ignore\n", target: func(t *Table) { t.Privileges.Delete, t.Privileges.Truncate = false, false }},
		{name: "renamed and included columns", table: base + "    columns: { include: [id, fullname, phone], rename: { fullname: full_name } }\n",
			want: []string{
				`tables[0].columns.include[1]: column "full_name" does not exist in "public"."customers"`,
				`tables[0].columns.include[2]: column "phone" does not exist in "public"."customers"`,
				`tables[0].columns.rename.fullname: column "full_name" does not exist in "public"."customers"`,
			}},
		{name: "generated column written", table: base + "    columns: { rename: { terms: search } }\n",
			want: []string{`tables[0].columns.rename.terms: column "search" of "public"."customers" is generated and cannot be written`}},
		{name: "version columns missing", table: base + "    version: { commit_column: vc, lsn_column: name }\n",
			want: []string{
				`tables[0].version.commit_column: column "vc" does not exist in "public"."customers" (add it: ALTER TABLE "public"."customers" ADD COLUMN "vc" bigint)`,
				`tables[0].version.lsn_column: column "name" of "public"."customers" is text; a version column must be bigint`,
			}},
		{name: "soft delete column", table: base + "    deletes: soft\n    soft_delete: { column: gone }\n",
			want: []string{`tables[0].soft_delete.column: column "gone" does not exist in "public"."customers"`}},
		{name: "outbox needs no version columns", table: "  - topic: o\n    format: outbox\n    target: public.customers\n    key: [id]\n",
			target: func(t *Table) { t.Columns = t.Columns[:4] }},
		{name: "outbox payload", table: "  - topic: o\n    format: outbox\n    target: public.customers\n    key: [id]\n    payload: { id: $.id, nickname: $.nick }\n",
			target: func(t *Table) { t.Columns[2].NotNull = true },
			want: []string{
				`tables[0].payload.nickname: column "nickname" does not exist in "public"."customers"`,
				`tables[0].payload: does not map column "email" of "public"."customers", which is NOT NULL without a default`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := customers()
			if tt.target != nil {
				tt.target(target)
			}
			var got []string
			for _, f := range Check(loadTable(t, tt.table), target) {
				got = append(got, f.Path+": "+f.Message)
			}
			for _, want := range tt.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
					t.Errorf("missing finding %q\ngot:\n  %s", want, strings.Join(got, "\n  "))
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d findings, want %d:\n  %s", len(got), len(tt.want), strings.Join(got, "\n  "))
			}
		})
	}
}
