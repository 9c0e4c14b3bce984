// Package dedup owns pgsink's exactly-once bookkeeping in PostgreSQL: partition
// offsets with epoch fencing, the outbox event-id ledger, the delete-tombstone
// ledger, their migrations and their retention.
//
// It must never move an offset outside the transaction that applied the data
// it covers (invariant I1).
package dedup
