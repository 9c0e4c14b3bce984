// Package dedup owns pgsink's exactly-once bookkeeping in PostgreSQL: partition
// offsets with epoch fencing, the outbox event-id ledger, the delete-tombstone
// ledger, the dead letters, the transaction staging (and how a reset of an
// unlogged staging table is seen), their migrations and their retention. No other
// package names a pgsink.* table; one file here holds each table's statements.
//
// It must never move an offset outside the transaction that applied the data
// it covers (invariant I1).
package dedup
