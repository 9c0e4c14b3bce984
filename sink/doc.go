// Package sink is the PostgreSQL side of pgsink: the target catalog, statement
// building, type binding, schema evolution and the apply of one partition's
// batch in one transaction.
//
// It must never know about Kafka: it sees decoded changes and a partition
// identity, and it writes identifiers only through pgx's quoting (I8).
package sink
