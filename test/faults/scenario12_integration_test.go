//go:build integration

package faults

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Scenario 12: under schema.evolve: follow the source table gains two
// columns, renames one of them and drops a column the target holds NOT
// NULL, between workload transactions. pgsink must add the columns, report
// the rename as likely (with the carry-over), relax the NOT NULL instead
// of dead-lettering every later insert, and, once the operator ran the
// carry-over it printed, C holds over the source's current columns.
func TestFaults12AddRenameDropColumn(t *testing.T) {
	long(t)
	s := newScenario(t, "12 source ADD, RENAME and DROP COLUMN mid-stream (evolve: follow)", scenarioOptions{
		evolve:         "follow",
		extraSourceDDL: `ALTER TABLE public.accounts ADD COLUMN region text NOT NULL DEFAULT 'eu'`,
		extraTargetDDL: `ALTER TABLE public.accounts ADD COLUMN region text NOT NULL`,
	})
	s.result.FaultKinds = "ALTER TABLE ADD COLUMN note, score; RENAME COLUMN note TO remark; DROP COLUMN region (NOT NULL in the target)"
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	time.Sleep(5 * time.Second)
	s.load.alter(`ALTER TABLE public.accounts ADD COLUMN note text, ADD COLUMN score numeric(10,3)`, `, note = 'n' || seq, score = seq * 1.125`)
	time.Sleep(5 * time.Second)
	s.load.alter(`ALTER TABLE public.accounts RENAME COLUMN note TO remark`, `, remark = 'r' || seq, score = seq * 1.125`)
	time.Sleep(5 * time.Second)
	s.load.alter(`ALTER TABLE public.accounts DROP COLUMN region`, `, remark = 'r' || seq, score = seq * 1.125`)
	s.result.Faults += 3
	time.Sleep(5 * time.Second)
	s.load.halt()

	// The carry-over runs once pgsink has applied every event from before
	// the rename: when the target equals the source but for the renamed
	// column, which rows not changed since still hold in the old one.
	s.columns = []string{"score"}
	if !s.waitQuiet(3 * time.Minute) {
		t.Fatalf("the target never caught up with the source outside the renamed column")
	}
	var stranded int
	if err := s.target.QueryRow(context.Background(), `SELECT count(*) FROM public.accounts WHERE note IS NOT NULL AND remark IS NULL`).Scan(&stranded); err != nil {
		t.Fatal(err)
	}
	if stranded == 0 {
		t.Errorf("no target row holds its value in the old column only: the carry-over is tested on nothing")
	}
	fix := s.renameFix()
	update, _, _ := strings.Cut(fix, "; then")
	if _, err := s.target.Exec(context.Background(), update); err != nil {
		t.Fatalf("the carry-over pgsink printed (%q): %v", update, err)
	}
	s.columns = []string{"remark", "score"}
	quiet := s.waitQuiet(time.Minute)
	var relaxes, renames float64
	for _, p := range s.live() {
		relaxes += p.metricWhere("pgsink_schema_changes_total", `change="drop_not_null"`)
		renames += p.metricWhere("pgsink_schema_changes_total", `change="likely_rename"`)
	}
	s.stopAll()
	s.checkAll(quiet, 0)
	if relaxes < 1 || renames < 1 {
		t.Errorf("pgsink_schema_changes_total: drop_not_null %v, likely_rename %v; want each at least once", relaxes, renames)
	}
	var filled int
	if err := s.target.QueryRow(context.Background(), `SELECT count(*) FROM public.accounts WHERE remark IS NOT NULL AND region IS NULL`).Scan(&filled); err != nil {
		t.Fatalf("target after the schema changes: %v", err)
	}
	if filled == 0 {
		t.Errorf("no target row was written after the drop with the renamed column: the scenario tested nothing")
	}
	t.Logf("%d rows carried over, %d target rows written after the DROP carry the renamed column; carry-over: %s", stranded, filled, update)
}

var renameFixRE = regexp.MustCompile(`a column was likely renamed[^{\n]*(\{[^\n]*\})`)

// renameFix returns the carry-over an instance logged with its
// likely-rename warning.
func (s *scenario) renameFix() string {
	for _, p := range s.procs {
		m := renameFixRE.FindStringSubmatch(p.Logs())
		if m == nil {
			continue
		}
		var fields map[string]string
		if err := json.Unmarshal([]byte(m[1]), &fields); err != nil {
			s.t.Fatalf("likely-rename warning: %v: %s", err, m[1])
		}
		if fields["column"] != "note" || fields["new_column"] != "remark" {
			s.t.Fatalf("likely rename reported as %v, want note → remark", fields)
		}
		return fields["fix"]
	}
	s.t.Fatalf("no instance logged a likely rename")
	return ""
}
