package faults

import "testing"

func TestParseFailpoints(t *testing.T) {
	fp, err := ParseFailpoints("before-commit:0.5, after-kafka-commit:1")
	if err != nil || fp["before-commit"] != 0.5 || fp["after-kafka-commit"] != 1 || len(fp) != 2 {
		t.Fatalf("ParseFailpoints = %v, %v", fp, err)
	}
	for _, bad := range []string{"before-commit", "nowhere:0.5", "after-commit:2", "after-commit:x"} {
		if _, err := ParseFailpoints(bad); err == nil {
			t.Errorf("ParseFailpoints(%q) accepted it", bad)
		}
	}
	if fp, err := ParseFailpoints(""); err != nil || len(fp) != 0 {
		t.Fatalf("empty spec: %v, %v", fp, err)
	}
	// A point armed at probability 0 never fires (the test process lives on).
	Failpoints{"after-commit": 0}.Hit("after-commit")
}
