package sink

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
)

// goldenDDLTable is a schema.create table whose names must stay names (I8).
func goldenDDLTable(deletes config.Deletes) config.Table {
	return config.Table{Path: "tables[0]", Format: config.FormatTable, Deletes: deletes,
		Target:     config.Target{TableName: config.TableName{Schema: `App "Prod"`, Name: "Order; DROP TABLE x"}},
		SoftDelete: config.SoftDelete{Column: `deleted"; --`},
		Columns:    config.Columns{Exclude: []string{"secret"}, Rename: map[string]string{"note": `Note"); DROP TABLE x; --`}},
		Version:    config.Version{Guard: true, CommitColumn: "_pgsink_commit_lsn", LSNColumn: "_pgsink_lsn"},
		Schema:     config.Schema{Create: true, Evolve: config.EvolveAddColumns}}
}

// goldenDDLColumns are an event's columns: hostile names, every spelling of
// a type the decoder produces, and a secret whose hostile type is excluded
// before anything reads it.
func goldenDDLColumns() []debezium.Column {
	return []debezium.Column{
		{Name: "Order Id", Type: "integer", NotNull: true},
		{Name: "region; DROP TABLE x", Type: "text", NotNull: true},
		{Name: "amount", Type: "numeric(12,2)"},
		{Name: "note", Type: "character varying(20)"},
		{Name: "at", Type: "timestamp(3) with time zone"},
		{Name: "mood", Type: `"mood"`},
		{Name: "tags", Type: "text[]"},
		{Name: "bits", Type: "bit varying"},
		{Name: "secret", Type: "text); DROP TABLE x; --"},
	}
}

func TestDDLGolden(t *testing.T) {
	hard, soft := goldenDDLTable(config.DeletesHard), goldenDDLTable(config.DeletesSoft)
	key := []string{"Order Id", "region; DROP TABLE x"}
	cases := map[string]func() (string, []columnType, error){
		"ddl_create_table.sql":      func() (string, []columnType, error) { return createTableStatement(hard, goldenDDLColumns(), key) },
		"ddl_create_table_soft.sql": func() (string, []columnType, error) { return createTableStatement(soft, goldenDDLColumns(), key) },
		"ddl_add_columns.sql": func() (string, []columnType, error) {
			return addColumnsStatement(hard, goldenDDLColumns()[2:6])
		},
	}
	for file, build := range cases {
		t.Run(file, func(t *testing.T) {
			sql, _, err := build()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, file, sql)
		})
	}
}

// TestDDLRefusesHostileTypes: every type text below would change the
// statement if it were written into it. Each is a *TypeError naming the
// column, for the dead letters; ddl_refused_types.txt keeps the reasons
// an operator reads.
func TestDDLRefusesHostileTypes(t *testing.T) {
	hostile := []debezium.Column{
		{Name: "amount", Type: "numeric(10,2)); DROP TABLE victim; --"},
		{Name: "amount", Type: "numeric(10,2); DROP TABLE victim"},
		{Name: "amount", Type: "numeric(1001,2)"},
		{Name: "amount", Type: "numeric(10,1001)"},
		{Name: "name", Type: "text not null default 'x'"},
		{Name: "name", Type: `text"; DROP TABLE x; --`},
		{Name: "name", Type: "character varying(0)"},
		{Name: "name", Type: "character varying(10485761)"},
		{Name: "at", Type: "timestamp(7) with time zone"},
		{Name: "at", Type: "time(-1) without time zone"},
		{Name: "n", Type: "integer(4)"},
		{Name: "mood", Type: `"Mood"`},
		{Name: "mood", Type: "public.mood"},
		{Name: "mood", Type: "mood COLLATE \"C\""},
		{Name: "empty", Type: ""},
		{Name: "decoded", TypeErr: errors.New(`field "decoded": connect.decimal.precision "10,2)); DROP TABLE victim; --" is not an integer`)},
	}
	var reasons []string
	for _, c := range hostile {
		cols := append(goldenDDLColumns()[:2], c)
		for _, build := range []func() (string, []columnType, error){
			func() (string, []columnType, error) {
				return createTableStatement(goldenDDLTable(config.DeletesHard), cols, []string{"Order Id"})
			},
			func() (string, []columnType, error) {
				return addColumnsStatement(goldenDDLTable(config.DeletesHard), cols[2:])
			},
		} {
			sql, _, err := build()
			var typeErr *TypeError
			if !errors.As(err, &typeErr) || typeErr.Column != c.Name {
				t.Fatalf("type %q: statement %q, error %v; want a *TypeError for column %q", c.Type, sql, err, c.Name)
			}
		}
		_, _, err := addColumnsStatement(goldenDDLTable(config.DeletesHard), []debezium.Column{c})
		reasons = append(reasons, fmt.Sprintf("%q\n  %v", c.Type, err))
	}
	checkGolden(t, "ddl_refused_types.txt", strings.Join(reasons, "\n"))
}
