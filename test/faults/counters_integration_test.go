//go:build integration

package faults

import (
	"sync"
	"syscall"
	"time"
)

// counters are the pgsink metrics a scenario reports, as last read from
// one instance. A killed instance takes what it counted after its last
// reading with it, so the sums are lower bounds once a SIGKILL happened.
type counters struct {
	mu         sync.Mutex
	stale      float64 // pgsink_records_skipped_total{reason="stale"}: the version guard or a tombstone refused
	duplicates float64 // {reason="duplicate"}: outbox events already in the ledger
	dead       float64 // pgsink_dead_letters_total
	conflicts  float64 // pgsink_insert_conflicts_total: batches applied again with upserts only
	pipelined  float64 // pgsink_apply_pipelined_total: transactions sent behind another of their partition
}

// sample reads the counters of a live instance; it keeps the last reading
// when the instance does not answer (dead, or busy).
func (p *proc) sample() {
	stale := p.metricWhere("pgsink_records_skipped_total", `reason="stale"`)
	dups := p.metricWhere("pgsink_records_skipped_total", `reason="duplicate"`)
	dead := p.metric("pgsink_dead_letters_total")
	conflicts := p.metric("pgsink_insert_conflicts_total")
	pipelined := p.metric("pgsink_apply_pipelined_total")
	p.counters.mu.Lock()
	defer p.counters.mu.Unlock()
	if stale >= 0 {
		p.counters.stale = max(p.counters.stale, stale)
	}
	if dups >= 0 {
		p.counters.duplicates = max(p.counters.duplicates, dups)
	}
	if dead >= 0 {
		p.counters.dead = max(p.counters.dead, dead)
	}
	if conflicts >= 0 {
		p.counters.conflicts = max(p.counters.conflicts, conflicts)
	}
	if pipelined >= 0 {
		p.counters.pipelined = max(p.counters.pipelined, pipelined)
	}
}

// checkPipelined fails a scenario run with apply.pipeline above 1 in
// which no instance ever sent a transaction behind another: it would have
// tested one transaction at a time under another name.
func (s *scenario) checkPipelined() {
	s.t.Helper()
	var sent float64
	for _, p := range s.procs {
		p.counters.mu.Lock()
		sent += p.counters.pipelined
		p.counters.mu.Unlock()
	}
	if sent == 0 {
		s.t.Errorf("no transaction was sent behind another (pgsink_apply_pipelined_total 0 on every instance): the pipeline never engaged")
	}
	s.t.Logf("%.0f transactions sent behind another of their partition (a lower bound after a SIGKILL)", sent)
}

// sampleEvery reads the counters every interval until the instance exits,
// so a kill -9 loses at most one interval of them.
func (p *proc) sampleEvery(interval time.Duration) {
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
				p.sample()
			}
		}
	}()
}

// killed reports whether the instance died of SIGKILL (its last counts may
// be lost).
func (p *proc) killed() bool {
	if !p.exited() {
		return false
	}
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// deadLettersCounted sums the instances' dead-letter counters.
func (s *scenario) deadLettersCounted() int {
	n := 0
	for _, p := range s.procs {
		p.counters.mu.Lock()
		n += int(p.counters.dead)
		p.counters.mu.Unlock()
	}
	return n
}

// staleSkipped sums the instances' stale, duplicate and insert-conflict
// counters for the results table: "≥" when a killed instance may have
// counted more.
func (s *scenario) staleSkipped() (stale, dups, conflicts int, lowerBound bool) {
	for _, p := range s.procs {
		p.counters.mu.Lock()
		stale += int(p.counters.stale)
		dups += int(p.counters.duplicates)
		conflicts += int(p.counters.conflicts)
		p.counters.mu.Unlock()
		lowerBound = lowerBound || p.killed()
	}
	return stale, dups, conflicts, lowerBound
}
