//go:build integration

package faults

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// result is one scenario's row of RESULTS.md.
type result struct {
	Scenario            string
	Started             time.Time
	Duration            time.Duration
	Events              int    // row changes written to the source
	OutboxEvents        int    // outbox events written to the source
	Applied             int    // records audited (applied or dead-lettered) once
	Faults              int    // faults injected (kills, stops, restarts, replays, poison records)
	FaultKinds          string // what they were
	Stale               string // stale events skipped, from the instances' metrics
	InsertConflicts     string // batches applied again with upserts only, from the instances' metrics
	Fenced              int
	DeadLettered        int
	DeadLettersInjected int
	Replays             int
	Checks              map[string]verdict
	Expect              string // "fail" for the self-tests that break pgsink on purpose
}

var (
	resultsMu sync.Mutex
	results   []*result
)

func recordResult(r *result) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	results = append(results, r)
}

func mark(v verdict, ok bool) string {
	if !ok {
		return "—"
	}
	if v.OK {
		return "pass"
	}
	return "**FAIL**"
}

// writeResults writes the table of every scenario this run checked.
func writeResults(path string) error {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "# Fault-injection results\n\nWritten by `make faults` (test/faults) on %s. Invariants: C target checksum = source,\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("M offsets/epochs never decreased (trigger), U no record applied twice (UNIQUE audit, exit codes, no audit gap),\n")
	b.WriteString("V no version regression (trigger), DL dead letters = poison injected, R no deleted key resurrected,\n")
	b.WriteString("O each outbox event id applied exactly once (trigger + id sets), T (apply.consistency: transaction, scenarios 1t, 3t, 4t, 7t) a reader in REPEATABLE READ\n")
	b.WriteString("never saw part of a source transaction and each was resolved once. Stale skipped: pgsink_records_skipped_total{reason=\"stale\"}\n")
	b.WriteString("(and {reason=\"duplicate\"} for outbox events), summed over the instances; \"≥\" when a SIGKILLed instance took its last counts with it.\n")
	b.WriteString("Insert conflicts: pgsink_insert_conflicts_total, batches whose new keys the target held, applied again with upserts only.\n")
	b.WriteString("Self-test rows break pgsink on purpose and must show a FAIL.\n\n")
	b.WriteString("| scenario | s | events | outbox events | applied | faults injected | stale skipped | insert conflicts | fenced | dead-lettered | C | M | U | V | DL | R | O | T |\n")
	b.WriteString("|---|---:|---:|---:|---:|---|---|---:|---:|---:|---|---|---|---|---|---|---|---|\n")
	var events, outbox, applied, faults int
	for _, r := range results {
		name := r.Scenario
		if r.Expect == "fail" {
			name += " (self-test: must FAIL)"
		} else {
			events += r.Events
			outbox += r.OutboxEvents
			applied += r.Applied
			faults += r.Faults
		}
		stale, conflicts := r.Stale, r.InsertConflicts
		if stale == "" {
			stale = "n/m"
		}
		if conflicts == "" {
			conflicts = "n/m"
		}
		fmt.Fprintf(&b, "| %s | %.0f | %d | %d | %d | %d: %s | %s | %s | %d | %d/%d |", name, r.Duration.Seconds(), r.Events, r.OutboxEvents, r.Applied, r.Faults, r.FaultKinds,
			stale, conflicts, r.Fenced, r.DeadLettered, r.DeadLettersInjected)
		for _, c := range checkOrder {
			v, ok := r.Checks[c]
			fmt.Fprintf(&b, " %s |", mark(v, ok))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nTotals (scenarios, self-tests excluded): %d source row changes and %d outbox events, %d records applied once, %d faults injected.\n\n## Details\n\n", events, outbox, applied, faults)
	for _, r := range results {
		fmt.Fprintf(&b, "### %s\n\n", r.Scenario)
		var names []string
		for c := range r.Checks {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			v := r.Checks[c]
			fmt.Fprintf(&b, "- %s: %s — %s\n", c, mark(v, true), strings.ReplaceAll(v.Detail, "\n", " "))
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
