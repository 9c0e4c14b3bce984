// Package archtest holds the directions pgsink's imports may take
// (DESIGN.md): cmd → connector → {sink, dedup, debezium} → config, with
// sink knowing nothing of Kafka and debezium nothing of Kafka clients or
// SQL. Its test fails on a new arrow against them.
package archtest
