package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and always answers with either a
// configuration or Problems, whatever the bytes.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, "../examples/pgsink.yaml")
	for _, file := range seeds {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(minimalHeader + "tables:\n  - topic: a\n    target: public.a\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("tables: [{topic: ${X}, target: '\"a\".b'}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, lookupTestEnv)
		if err == nil {
			if cfg == nil {
				t.Fatal("Parse returned neither a configuration nor an error")
			}
			cfg.Router()
			if _, err := cfg.Render(); err != nil {
				t.Fatalf("Render of a valid configuration failed: %v", err)
			}
			return
		}
		var problems Problems
		if !errors.As(err, &problems) || len(problems) == 0 {
			t.Fatalf("Parse error is %T %v, want non-empty Problems", err, err)
		}
	})
}
