package dedup

import "testing"

// TestTxCutStagedCommit: for a record of a transaction staged at the cut,
// the cut answers as ResolvedCommits' first clause did then: the first
// commit of the xid after the record, else a row recorded without its
// position (0), else -1.
func TestTxCutStagedCommit(t *testing.T) {
	cut := TxCut{StagedApplied: []TxCommit{{TxID: 5, CommitLSN: 500}, {TxID: 7, CommitLSN: 0}, {TxID: 7, CommitLSN: 700}, {TxID: 7, CommitLSN: 900}, {TxID: 9, CommitLSN: 0}}}
	for _, tc := range []struct {
		txID, lsn, want int64
	}{
		{5, 450, 500}, // applied before the cut, a record left staged
		{5, 550, -1},  // the xid come round: a record after 5's commit
		{7, 650, 700}, // of the first 7 to commit after it
		{7, 800, 900}, // of the second
		{7, 950, 0},   // after both: the row without position
		{9, 100, 0},   // recorded without position only
		{11, 100, -1}, // not recorded at the cut
	} {
		if got := cut.stagedCommit(tc.txID, tc.lsn); got != tc.want {
			t.Errorf("stagedCommit(%d, lsn %d) = %d, want %d", tc.txID, tc.lsn, got, tc.want)
		}
	}
}
