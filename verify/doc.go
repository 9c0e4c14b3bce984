// Package verify compares a source table with its pgsink target row by row,
// without stopping anything: key-ordered chunks hashed on both servers, the
// differing chunks drilled down to keys, each key checked again once pgsink
// has applied what the source had committed (so changes in flight are not
// drift), and --repair asks Debezium to send the differing rows again.
//
// It only reads the target; it never writes to it. The one write it makes
// anywhere is --repair's signal row in the source's signal table: healing goes
// through Debezium, Kafka and pgsink's guarded apply path like any change.
package verify
