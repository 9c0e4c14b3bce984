//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationRecordingMatchesCommittedFixtures records one scenario again
// through the real Debezium and checks that the committed fixtures still
// describe what it emits: the same topics, operations, tombstones and headers.
// LSNs, txids and timestamps differ from run to run; shapes must not.
func TestIntegrationRecordingMatchesCommittedFixtures(t *testing.T) {
	env, err := stacktest.LoadEnv()
	if err != nil {
		t.Fatal(err)
	}
	sc := scenarios[0]
	dir := t.TempDir()
	if _, err := record(env, sc, dir, 3*time.Minute); err != nil {
		t.Fatalf("record %s: %v", sc.name, err)
	}
	fresh, err := recording.ReadFile(filepath.Join(dir, "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := recording.ReadFile(filepath.Join(fixtureDir, sc.name, "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got, want := shape(t, fresh), shape(t, committed)
	if !slices.Equal(got, want) {
		t.Errorf("Debezium's output no longer matches testdata/debezium/%s (run `make fixtures`):\nrecorded now:\n  %s\ncommitted:\n  %s",
			sc.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// shape summarises records as sorted "topic op headers" lines with counts.
func shape(t *testing.T, records []recording.Record) []string {
	t.Helper()
	counts := map[string]int{}
	for _, r := range records {
		op := "tombstone"
		if r.Value != nil {
			var v struct {
				Payload struct {
					Op     string `json:"op"`
					Status string `json:"status"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("%s@%d: %v", r.Topic, r.Offset, err)
			}
			op = v.Payload.Op + v.Payload.Status
		}
		var headers []string
		for _, h := range r.Headers {
			headers = append(headers, h.Key)
		}
		slices.Sort(headers)
		counts[fmt.Sprintf("%s op=%s headers=%s", r.Topic, op, strings.Join(headers, ","))]++
	}
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		lines = append(lines, fmt.Sprintf("%d× %s", counts[k], k))
	}
	return lines
}
