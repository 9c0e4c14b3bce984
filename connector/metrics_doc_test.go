package connector

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every series the connector defines is in docs/operations.md's metrics
// list: an operator reading a dashboard finds what each one means there.
// The names are read from the package's sources, where each is declared
// once (Name: "pgsink_…"), so a series added without its line fails here.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`Name:\s*"(pgsink_[a-z0-9_]+)"`)
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllSubmatch(src, -1) {
			seen++
			if !strings.Contains(string(doc), "`"+string(m[1])+"`") && !strings.Contains(string(doc), "`"+string(m[1])+"{") {
				t.Errorf("%s (declared in %s) is not in docs/operations.md's metrics list", m[1], f)
			}
		}
	}
	if seen < 50 {
		t.Fatalf("found %d metric names in the package's sources, want the 50 or more it declares: the pattern no longer matches", seen)
	}
}
