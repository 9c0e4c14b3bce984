package config

import (
	"os"
	"testing"
)

// TestExampleValidates keeps examples/pgsink.yaml valid, and checks that the
// values it spells out are the ones pgsink would use anyway.
func TestExampleValidates(t *testing.T) {
	data, err := os.ReadFile("../examples/pgsink.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("examples/pgsink.yaml", data, lookupTestEnv)
	if err != nil {
		t.Fatalf("examples/pgsink.yaml must validate, got:\n%v", err)
	}
	def := Default()
	if cfg.Apply != def.Apply || cfg.Retention != def.Retention || cfg.Log != def.Log || cfg.Metrics != def.Metrics ||
		cfg.ShutdownTimeout != def.ShutdownTimeout || cfg.Postgres.Schema != def.Postgres.Schema {
		t.Errorf("the example's settings differ from the defaults it documents:\nexample  %+v %+v %+v\ndefaults %+v %+v %+v",
			cfg.Apply, cfg.Retention, cfg.Log, def.Apply, def.Retention, def.Log)
	}
	if len(cfg.Tables) != 4 || cfg.Tables[1].Target.TableName != (TableName{"Billing", "Invoice"}) {
		t.Errorf("want 4 tables, the second into \"Billing\".\"Invoice\"; got %+v", cfg.Tables)
	}
}

// TestDefaults checks what a minimal file gets.
func TestDefaults(t *testing.T) {
	cfg, problems := parse(t, minimalHeader+"tables:\n  - topic: a\n    target: public.a\n")
	if problems != nil {
		t.Fatalf("want a valid configuration, got:\n%v", problems)
	}
	tbl := cfg.Tables[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"dead letter topic", cfg.Errors.DeadLetter.Topic, "sink.dlq"},
		{"destination", cfg.Errors.DeadLetter.Destination, DestinationTable},
		{"max_wait", cfg.Apply.Batch.MaxWait.String(), "10ms"},
		{"format", tbl.Format, FormatTable},
		{"deletes", tbl.Deletes, DeletesHard},
		{"truncate", tbl.Truncate, TruncateApply},
		{"guard", tbl.Version.Guard, true},
		{"commit column", tbl.Version.CommitColumn, DefaultCommitLSNColumn},
		{"evolve", tbl.Schema.Evolve, EvolveNone},
		{"path", tbl.Path, "tables[0]"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if pos := cfg.Position("tables[0].key"); pos.Line != 7 || pos.File != "test.yaml" {
		t.Errorf("Position of a missing key = %v, want test.yaml:7 (its table's line)", pos)
	}
}

func TestColumnsColumn(t *testing.T) {
	c := Columns{Exclude: []string{"secret"}, Rename: map[string]string{"fullname": "name"}}
	for field, want := range map[string]string{"id": "id", "secret": "", "fullname": "name"} {
		got, ok := c.Column(field)
		if got != want || ok != (want != "") {
			t.Errorf("Column(%q) = %q, %v; want %q", field, got, ok, want)
		}
	}
	inc := Columns{Include: []string{"id"}}
	if _, ok := inc.Column("other"); ok {
		t.Errorf("Column(other) with include [id] is written, want dropped")
	}
}
