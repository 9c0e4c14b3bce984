package debezium

import (
	"maps"
	"testing"
)

// fixtureEnd is the table test/fixturegen writes last to tell the
// recording is complete; its topic is not recorded.
const fixtureEnd = "public.fixture_end"

// TestTransactionCountsMatchEvents checks, on every recorded scenario, that
// each END marker's counts, total and per data collection, are the events
// of its transaction in the data topics: what the transaction-consistent
// resolver waits for before it applies a transaction.
func TestTransactionCountsMatchEvents(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			dec := NewDecoder(f.options())
			events := map[int64]map[string]int64{} // tx id → data collection → events
			var ends []*TransactionMarker
			for _, r := range f.records {
				ch, err := dec.Decode(toRecord(r))
				if err != nil {
					continue // TestGolden reports records that do not decode
				}
				switch {
				case ch.Kind == KindTransaction && ch.TxMark.Status == "END":
					ends = append(ends, ch.TxMark)
				case ch.Transaction != nil:
					if ch.Transaction.TxID != ch.TxID {
						t.Errorf("%s@%d: transaction block's id %d differs from source.txId %d", r.Topic, r.Offset, ch.Transaction.TxID, ch.TxID)
					}
					if events[ch.Transaction.TxID] == nil {
						events[ch.Transaction.TxID] = map[string]int64{}
					}
					events[ch.Transaction.TxID][CollectionOf(&ch)]++
				}
			}
			if len(ends) == 0 {
				t.Fatal("no END marker decoded")
			}
			for _, end := range ends {
				want := map[string]int64{}
				var sum int64
				for _, c := range end.DataCollections {
					want[c.Collection()] = c.EventCount
					sum += c.EventCount
				}
				if want[fixtureEnd] > 0 {
					continue // the recorder stops at it and keeps none of its events
				}
				if sum != end.EventCount {
					t.Errorf("END %s: data collections sum to %d events, event_count is %d", end.ID, sum, end.EventCount)
				}
				if got := events[end.TxID]; !maps.Equal(got, want) {
					t.Errorf("END %s: events in the data topics %v, END counts %v", end.ID, got, want)
				}
			}
		})
	}
}

// TestTransactionCommitLSN checks, on every recorded scenario, what keying
// applied transactions by xid and commit position relies on
// (dedup.Transactions.QueueResolveAll): an END's CommitLSN is the LSN part
// of its id, and every event of its transaction has an LSN (source.lsn)
// below it. (That a later transaction of the same xid has its events at
// or past that commit follows from the WAL's order; no recording holds an
// xid that came round.)
func TestTransactionCommitLSN(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			dec := NewDecoder(f.options())
			maxLSN := map[int64]int64{} // tx id → its events' highest LSN
			var ends []*TransactionMarker
			for _, r := range f.records {
				ch, err := dec.Decode(toRecord(r))
				if err != nil {
					continue
				}
				switch {
				case ch.Kind == KindTransaction && ch.TxMark.Status == "END":
					ends = append(ends, ch.TxMark)
				case ch.Transaction != nil && ch.Version.LSN > 0:
					id := ch.Transaction.TxID
					maxLSN[id] = max(maxLSN[id], ch.Version.LSN)
				}
			}
			checked := 0
			for _, end := range ends {
				if end.CommitLSN <= 0 || itoa(end.TxID)+":"+itoa(end.CommitLSN) != end.ID {
					t.Errorf("END %s: CommitLSN %d, want the LSN part of its id", end.ID, end.CommitLSN)
				}
				if hi, ok := maxLSN[end.TxID]; ok {
					checked++
					if hi >= end.CommitLSN {
						t.Errorf("END %s: an event of its transaction at LSN %d, not below its commit %d", end.ID, hi, end.CommitLSN)
					}
				}
			}
			if checked == 0 {
				t.Fatal("no END with events of its transaction recorded")
			}
		})
	}
}
