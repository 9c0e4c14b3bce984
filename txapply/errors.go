package txapply

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// IncompleteError says that a transaction's END arrived and not all of its
// events are staged (yet): its partitions lag, or some of its events will
// never be, because their topic is not configured or a table is filtered.
// The resolver waits up to apply.transaction.max_wait, then stops with it.
type IncompleteError struct {
	ID          string // Debezium's transaction id, "<txId>:<lsn>"
	Offset      int64  // the END's offset in the transaction topic
	Staged      map[string]int64
	Want        map[string]int64
	StagedTotal int64
	WantTotal   int64
}

func (e *IncompleteError) Error() string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(e.Want)) {
		if e.Staged[c] != e.Want[c] {
			parts = append(parts, fmt.Sprintf("%s: %d of %d", c, e.Staged[c], e.Want[c]))
		}
	}
	return fmt.Sprintf("transaction %s (END at offset %d): staged %d of %d events (%s)", e.ID, e.Offset, e.StagedTotal, e.WantTotal, strings.Join(parts, ", "))
}

// OverstagedError says that more events of a transaction are staged for a
// collection than its END counts: staging and END disagree, and applying
// either view could apply what the source did not commit together.
type OverstagedError struct {
	ID         string
	Collection string
	Staged     int64
	Want       int64
}

func (e *OverstagedError) Error() string {
	return fmt.Sprintf("transaction %s: %d events of %s staged, its END counts %d: refusing to apply it", e.ID, e.Staged, e.Collection, e.Want)
}

// NoEndError says that records of a transaction were staged longer than
// apply.transaction.max_wait ago while the resolver had read every END of
// the transaction topic: its END never came.
type NoEndError struct {
	TxID        int64
	Records     int64
	FirstStaged time.Time
}

func (e *NoEndError) Error() string {
	return fmt.Sprintf("transaction %d: %d events staged since %s and no END in the transaction topic", e.TxID, e.Records, e.FirstStaged.UTC().Format(time.RFC3339))
}

// StopReason names why the resolver stopped, for the metrics' label.
func StopReason(err error) string {
	switch {
	case errors.As(err, new(*IncompleteError)):
		return "incomplete"
	case errors.As(err, new(*NoEndError)):
		return "no_end"
	case errors.As(err, new(*OverstagedError)):
		return "overstaged"
	}
	return "error"
}

// StoppedError is why the resolver stops: the transaction topic's
// partition stops with it, its offset unmoved, until an operator acts.
type StoppedError struct{ Err error }

func (e *StoppedError) Error() string { return e.Err.Error() }
func (e *StoppedError) Unwrap() error { return e.Err }

// StopWhat says what stopped, for the partition's stop reason (status).
func (e *StoppedError) StopWhat() string {
	switch StopReason(e.Err) {
	case "incomplete":
		return "the resolver waited apply.transaction.max_wait for a transaction's events while Debezium went on writing (a topic not configured, a filtered table, or a partition stopped); nothing after it is applied"
	case "no_end":
		return "a transaction's events were staged and its END never came within apply.transaction.max_wait; nothing after it is applied"
	case "overstaged":
		return "staged events and the transaction's END disagree; nothing after it is applied"
	}
	return "the resolver stopped; nothing after it is applied"
}

// MarkerError is a record of the transaction topic that cannot be read as
// a transaction marker (no marker, or its Avro body refused: no magic byte,
// a schema id the registry does not have, a body that does not match its
// schema): it cannot be passed over, since it may be a transaction's END.
type MarkerError struct {
	Topic  string
	Offset int64
	Err    error
}

func (e *MarkerError) Error() string {
	return fmt.Sprintf("%s@%d cannot be read as a transaction marker: %v", e.Topic, e.Offset, e.Err)
}
func (e *MarkerError) Unwrap() error { return e.Err }

// StopWhat says what stopped, for the partition's stop reason (status).
func (e *MarkerError) StopWhat() string {
	return "a record of the transaction topic cannot be read; nothing after it is applied"
}
