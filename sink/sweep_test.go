package sink

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSweepGolden holds the snapshot sweep's statements (sweep.go) to
// golden files, like TestStatementsGolden.
func TestSweepGolden(t *testing.T) {
	for file, got := range map[string]string{
		"sweep_hard.sql": newStatements(goldenTable(DeleteHard), "pgsink").sweep(),
		"sweep_soft.sql": newStatements(goldenTable(DeleteSoft), "pgsink").sweep(),
	} {
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
}
