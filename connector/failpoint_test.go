package connector

import "testing"

func TestParseFailpoints(t *testing.T) {
	fp, err := parseFailpoints("before-commit:0.5, after-kafka-commit:1")
	if err != nil || fp["before-commit"] != 0.5 || fp["after-kafka-commit"] != 1 || len(fp) != 2 {
		t.Fatalf("parseFailpoints = %v, %v", fp, err)
	}
	for _, bad := range []string{"before-commit", "nowhere:0.5", "after-commit:2", "after-commit:x"} {
		if _, err := parseFailpoints(bad); err == nil {
			t.Errorf("parseFailpoints(%q) accepted it", bad)
		}
	}
	if fp, err := parseFailpoints(""); err != nil || len(fp) != 0 {
		t.Fatalf("empty spec: %v, %v", fp, err)
	}
	// A point armed at probability 0 never fires (the test process lives on).
	failpoints{"after-commit": 0}.hit("after-commit")
}
