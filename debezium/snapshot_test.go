package debezium

import "testing"

// TestSnapshotMarks checks source.snapshot as Debezium 3.6.1 recorded it:
// each table's last snapshot record, and only it, ends the table (sink
// reconciliation relies on it), the snapshot's very first record is
// `first`, and streamed records carry no mark.
func TestSnapshotMarks(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			d := NewDecoder(f.options())
			last := map[string]Change{} // each topic's last snapshot record
			ends := map[string]int{}
			firsts := 0
			for _, r := range f.records {
				ch, err := d.Decode(toRecord(r))
				if err != nil || ch.Kind != KindChange {
					continue
				}
				if !ch.Snapshot {
					if ch.SnapshotMark != SnapshotNone {
						t.Errorf("%s@%d: streamed record with snapshot mark %d", r.Topic, r.Offset, ch.SnapshotMark)
					}
					continue
				}
				last[ch.Topic] = ch
				if ch.SnapshotMark.EndsTable() {
					ends[ch.Topic]++
				}
				if ch.SnapshotMark == SnapshotFirst {
					firsts++
				}
			}
			if len(last) == 0 || firsts != 1 {
				t.Fatalf("%d snapshot tables, %d `first` records; want some tables and one first", len(last), firsts)
			}
			for topic, ch := range last {
				if !ch.SnapshotMark.EndsTable() || ends[topic] != 1 {
					t.Errorf("%s: last snapshot record @%d has mark %d, %d records end the table; want one, the last", topic, ch.Offset, ch.SnapshotMark, ends[topic])
				}
			}
		})
	}
}
