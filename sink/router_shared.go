package sink

import (
	"fmt"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
)

// SharedTargetError is returned when a templated entry derives one target
// from a second source table (or topic) while the table reconciles
// snapshots: the sweep after one source's snapshot would delete the rows of
// the other, which that snapshot did not read. The partition stops with it.
type SharedTargetError struct {
	Table         string // the entry's key path
	Target        string
	First, Second string // "schema.table (topic T)"
}

func (e *SharedTargetError) Error() string {
	return fmt.Sprintf("%s: target %s is derived from both %s and %s: with snapshot.reconcile on, the sweep after a snapshot of one "+
		"would delete the rows of the other; set snapshot.reconcile: false on %s, or make the template tell them apart",
		e.Table, e.Target, e.First, e.Second, e.Table)
}

// sweptFanIn reports whether a derived target of tc gets a sweep after
// each snapshot (pgsink keeps positions, snapshot.reconcile is on and the
// table takes deletes), for which two sources are refused.
func (r *Router) sweptFanIn(tc *config.Table) bool {
	return tc.Target.Template != nil && !r.kafkaOffsets && tc.Snapshot.Reconcile &&
		tc.Deletes != config.DeletesIgnore && tc.Format != config.FormatOutbox
}

// checkSource refuses a second source for a swept templated target; the
// first one met is kept by target.
func (r *Router) checkSource(tc *config.Table, ch *debezium.Change) error {
	if !r.sweptFanIn(tc) {
		return nil
	}
	ref := tc.Target.String()
	src := fmt.Sprintf("%s.%s (topic %s)", ch.Schema, ch.Table, ch.Topic)
	first, seen := r.sources[ref]
	if !seen {
		r.sources[ref] = src
		return nil
	}
	if first != src {
		return &SharedTargetError{Table: tc.Path, Target: ref, First: first, Second: src}
	}
	return nil
}
