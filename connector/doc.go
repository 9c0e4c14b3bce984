// Package connector is the Kafka side of pgsink: the consumer group member,
// the rebalance callback that claims partitions in PostgreSQL, per-partition
// ordered batching with backpressure, and the dead-letter producer.
//
// It must never take a position from Kafka's committed offsets: positions live
// in PostgreSQL (invariant I6), and Kafka commits only feed lag dashboards.
package connector
