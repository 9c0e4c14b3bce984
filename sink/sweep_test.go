package sink

import "testing"

// TestSweepGolden holds the snapshot sweep's statements (sweep.go) to
// golden files, like TestStatementsGolden.
func TestSweepGolden(t *testing.T) {
	checkGolden(t, "sweep_hard.sql", newStatements(goldenTable(DeleteHard), "pgsink").sweep())
	checkGolden(t, "sweep_soft.sql", newStatements(goldenTable(DeleteSoft), "pgsink").sweep())
}
