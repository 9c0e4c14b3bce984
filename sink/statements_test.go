package sink

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgsink/pgsink/config"
)

var update = flag.Bool("update", false, "rewrite the golden SQL files in testdata/sql")

// goldenTable has identifiers that must stay names, never SQL (I8).
func goldenTable(deletes DeleteMode) *Table {
	return &Table{
		Schema: `App "Prod"`, Name: "Order; DROP TABLE x",
		Columns: []Column{
			{Name: "Order Id", Source: "Order Id", Type: "bigint"},
			{Name: "region", Source: "region", Type: "text"},
			{Name: "amount", Source: "amount", Type: "numeric(12,2)"},
			{Name: "Notes", Source: "notes", Type: "text"},
		},
		Key:              []string{"Order Id", "region"},
		Deletes:          deletes,
		SoftDeleteColumn: "__deleted",
		Truncates:        true,
		CommitColumn:     "_pgsink_commit_lsn",
		LSNColumn:        "_pgsink_lsn",
	}
}

// goldenOutbox is an outbox table whose names must stay names (I8).
func goldenOutbox(t *testing.T) *Table {
	return &Table{
		Schema: `App "Prod"`, Name: "Order; DROP TABLE x",
		Columns: []Column{
			{Name: "Order Id", Source: "$.id", Type: "text", Path: path(t, "$.id")},
			{Name: "amount", Source: "$.amount", Type: "numeric(12,2)", Path: path(t, "$.amount")},
			{Name: "Lines", Source: "$.lines", Type: "jsonb", Path: path(t, "$.lines")},
		},
		Key: []string{"Order Id"}, Deletes: DeleteIgnore,
		Outbox: &Outbox{EventTypes: []string{"OrderCreated"}},
	}
}

func TestStatementsGolden(t *testing.T) {
	hard := newStatements(goldenTable(DeleteHard), "pgsink")
	soft := newStatements(goldenTable(DeleteSoft), "pgsink")
	outbox := newOutboxStatements(goldenOutbox(t), "pgsink")
	keyOnly := goldenOutbox(t)
	keyOnly.Columns = keyOnly.Columns[:1]
	cases := map[string]string{
		"create_stage.sql":         hard.createStage,
		"upsert.sql":               hard.upsert([]bool{false, false, false, false}),
		"upsert_unchanged.sql":     hard.upsert([]bool{false, false, false, true}),
		"unresolved_unchanged.sql": hard.unresolved,
		"upsert_soft.sql":          soft.upsert([]bool{false, false, false, false}),
		"update.sql":               hard.update([]bool{false, false, false, false}),
		"update_unchanged.sql":     hard.update([]bool{false, false, false, true}),
		"update_soft.sql":          soft.update([]bool{false, false, false, false}),
		"upsert_missing.sql":       hard.upsertMissing([]bool{false, false, false, false}),
		"insert.sql":               hard.insert,
		"insert_soft.sql":          soft.insert,
		"blocked_fresh.sql":        hard.blockedFresh,
		"blocked_fresh_no_arrays.sql": newStatements(func() *Table {
			t := goldenTable(DeleteHard)
			t.Columns[1].Type = "inet"
			return t
		}(), "pgsink").blockedFresh,
		"delete_hard.sql":           hard.deleteHard,
		"delete_soft.sql":           soft.deleteSoft,
		"tombstones.sql":            hard.tombstones,
		"tombstones_new.sql":        hard.tombstonesNew,
		"truncate.sql":              hard.truncate,
		"truncate_tombstone.sql":    hard.truncateTS,
		"outbox_create_stage.sql":   outbox.createStage,
		"outbox_apply.sql":          outbox.apply,
		"outbox_apply_key_only.sql": newOutboxStatements(keyOnly, "pgsink").apply,
		"stage_values.sql":          stageValues(hard.stage, hard.stageCols, 2),
		"lock_target.sql":           hard.lockTarget,
		"table_revision.sql":        tableRevision,
		"moved_keep.sql":            hard.moves.keepMoved,
		"moved_resolve.sql":         hard.moves.resolveMoved,
		"moved_take.sql":            hard.takeMoved([]bool{false, false, false, true}),
		"moved_lock.sql":            lockMoves,
		"lower_future_versions.sql": lowerFutureVersionsSQL(config.TableName{Schema: `App "Prod"`, Name: "Order; DROP TABLE x"},
			config.Version{CommitColumn: `commit"; --`, LSNColumn: "_pgsink_lsn"}),
	}
	for file, got := range cases {
		t.Run(file, func(t *testing.T) { checkGolden(t, file, got) })
	}
}

// checkGolden compares got with testdata/sql/file, or writes it there
// under -update.
func checkGolden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "sql", file)
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sink -run Golden -update to create it)", err)
	}
	if got+"\n" != string(want) {
		t.Errorf("%s changed; review and rerun with -update if intended.\n--- got:\n%s\n--- want:\n%s", file, got, want)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := map[string]func(*Table){
		"no key":              func(t *Table) { t.Key = nil },
		"key not written":     func(t *Table) { t.Key = []string{"missing"} },
		"duplicate column":    func(t *Table) { t.Columns = append(t.Columns, t.Columns[0]) },
		"reserved column":     func(t *Table) { t.Columns[1].Name = "pgsink.op" },
		"version column used": func(t *Table) { t.Columns[1].Name = t.CommitColumn },
		"soft without marker": func(t *Table) { t.Deletes, t.SoftDeleteColumn = DeleteSoft, "" },
		"no version columns":  func(t *Table) { t.LSNColumn = "" },
		"no type":             func(t *Table) { t.Columns[2].Type = "" },
	}
	if err := goldenTable(DeleteHard).Validate(); err != nil {
		t.Fatalf("valid table rejected: %v", err)
	}
	if err := goldenOutbox(t).Validate(); err != nil {
		t.Fatalf("valid outbox table rejected: %v", err)
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			tbl := goldenTable(DeleteHard)
			mutate(tbl)
			if err := tbl.Validate(); err == nil {
				t.Errorf("Validate accepted a table with %s", name)
			}
		})
	}
}

func TestValidateRejectsOutbox(t *testing.T) {
	tests := map[string]func(*Table){
		"no key":            func(t *Table) { t.Key = nil },
		"key not written":   func(t *Table) { t.Key = []string{"missing"} },
		"no path":           func(t *Table) { t.Columns[1].Path = config.JSONPath{} },
		"reserved column":   func(t *Table) { t.Columns[1].Name = "pgsink.event" },
		"deletes":           func(t *Table) { t.Deletes = DeleteHard },
		"truncates":         func(t *Table) { t.Truncates = true },
		"duplicate columns": func(t *Table) { t.Columns = append(t.Columns, t.Columns[1]) },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			tbl := goldenOutbox(t)
			mutate(tbl)
			if err := tbl.Validate(); err == nil {
				t.Errorf("Validate accepted an outbox table with %s", name)
			}
		})
	}
}
