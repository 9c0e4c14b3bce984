package debezium

// SnapshotMark is Debezium's source.snapshot of a snapshot record: which
// records open and close a snapshot and each table's share of it.
type SnapshotMark uint8

const (
	SnapshotNone SnapshotMark = iota // "false", or a boolean
	// SnapshotRow is a snapshot record that neither opens nor closes
	// anything ("true").
	SnapshotRow
	// SnapshotFirst is the first record of the whole snapshot ("first").
	SnapshotFirst
	// SnapshotFirstOfTable is the first record of one table
	// ("first_in_data_collection").
	SnapshotFirstOfTable
	// SnapshotLastOfTable is the last record of one table
	// ("last_in_data_collection").
	SnapshotLastOfTable
	// SnapshotLast is the last record of the whole snapshot, and so of
	// its last table ("last").
	SnapshotLast
	// SnapshotIncremental is a record of an incremental snapshot chunk
	// ("incremental").
	SnapshotIncremental
	// SnapshotOther is a value this decoder does not know.
	SnapshotOther
)

// EndsTable reports whether the record is its table's last snapshot record:
// every snapshot record of the table was produced before it.
func (m SnapshotMark) EndsTable() bool {
	return m == SnapshotLastOfTable || m == SnapshotLast
}

func snapshotMark(v []byte) SnapshotMark {
	switch string(v) {
	case "false":
		return SnapshotNone
	case "true":
		return SnapshotRow
	case "first":
		return SnapshotFirst
	case "first_in_data_collection":
		return SnapshotFirstOfTable
	case "last_in_data_collection":
		return SnapshotLastOfTable
	case "last":
		return SnapshotLast
	case "incremental":
		return SnapshotIncremental
	}
	return SnapshotOther
}
