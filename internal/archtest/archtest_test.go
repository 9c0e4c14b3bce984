package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/pgsink/pgsink/"

// allowed maps each production package (by path below the module) to the
// module packages it may import. A package missing here may import none.
var allowed = map[string][]string{
	"cmd/pgsink":            {"config", "connector", "debezium", "dedup", "sink", "sink/catalog", "sink/pgcopy", "upstream", "verify", "internal/faults", "schemaregistry", "txapply"},
	"connector":             {"config", "debezium", "dedup", "sink", "sink/catalog", "internal/faults", "internal/backoff", "schemaregistry", "txapply", "txlocal"},
	"sink":                  {"config", "debezium", "dedup", "sink/catalog", "sink/pgcopy", "internal/backoff", "internal/decimal", "internal/sqltype"},
	"sink/catalog":          {"config"},
	"sink/pgcopy":           {"internal/decimal"},
	"debezium":              {"internal/decimal", "internal/sqltype", "internal/jsonenvelope"},
	"dedup":                 {"config", "internal/jsonenvelope"},
	"verify":                {"config", "debezium", "dedup", "sink", "sink/catalog"},
	"txapply":               {"debezium", "dedup", "sink", "txlocal"},
	"txlocal":               {"debezium", "dedup", "sink"},
	"config":                {},
	"upstream":              {"config", "sink/catalog", "internal/tlsca"},
	"schemaregistry":        {"config", "debezium", "internal/tlsca"},
	"internal/tlsca":        {},
	"internal/jsonenvelope": {},
	"internal/faults":       {"debezium"},
}

// forbidden are outside imports a package must never take, by prefix:
// the PostgreSQL side knows nothing of Kafka, the change model nothing of
// Kafka clients or SQL connections.
var forbidden = map[string][]string{
	"sink":         {"github.com/confluentinc/"},
	"sink/catalog": {"github.com/confluentinc/"},
	"sink/pgcopy":  {"github.com/confluentinc/"},
	"dedup":        {"github.com/confluentinc/"},
	"upstream":     {"github.com/confluentinc/"},
	"verify":       {"github.com/confluentinc/"},
	"txapply":      {"github.com/confluentinc/"},
	"txlocal":      {"github.com/confluentinc/", "github.com/jackc/"},
	"config":       {"github.com/confluentinc/", "github.com/jackc/"},
	"debezium": {"github.com/confluentinc/", "github.com/jackc/pgx/v5/pgconn", "github.com/jackc/pgx/v5/pgxpool",
		"github.com/jackc/pgx/v5\x00"},
}

// TestImportDirections lists every production package's imports (tests
// excluded: a test may reach across to prove a round trip) and checks them
// against allowed and forbidden.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if strings.HasPrefix(pkg, "test/") || strings.HasPrefix(pkg, "examples/") || pkg == "docker" || pkg == "internal/archtest" {
			continue // tools and tests around the product, not the product
		}
		seen++
		may, known := allowed[pkg]
		if !known && !strings.HasPrefix(pkg, "internal/") {
			t.Errorf("%s: a new package: add its allowed imports to archtest", pkg)
		}
		for _, imp := range fields[1:] {
			if own, ok := strings.CutPrefix(imp, module); ok {
				if !contains(may, own) {
					t.Errorf("%s imports %s: not an allowed direction (DESIGN.md, Packages)", pkg, own)
				}
				continue
			}
			for _, f := range forbidden[pkg] {
				if imp+"\x00" == f || (!strings.HasSuffix(f, "\x00") && strings.HasPrefix(imp, f)) {
					t.Errorf("%s imports %s: forbidden there", pkg, imp)
				}
			}
		}
	}
	if seen < len(allowed) {
		t.Fatalf("saw %d product packages, want at least %d: go list printed\n%s", seen, len(allowed), out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
