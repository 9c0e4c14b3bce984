// Package txapply is the resolver of apply.consistency: transaction
// (docs/transactions.md): it applies whole source transactions, in the
// order of Debezium's transaction topic, from the records the partitions
// staged, each in one target transaction fenced by the transaction topic's
// offsets row. It never applies part of a source transaction, and never one
// before an earlier one; it holds one chunk of records at a time.
package txapply
