// Command bench is `make bench` (issue 8): on the local stack it produces a
// Debezium change stream of 1,000,000 events through the real Debezium
// PostgreSQL connector, then measures, in one run, pgsink draining it
// (exactly once, at least once, batches of 1), the physical limit (COPY of
// the final row images into a keyed table), the Debezium JDBC sink on the
// same topic with unnest inserts on and off, and pgsink's latency at a
// steady 5,000 events/s. Its Avro phase (issue 23; `-only avro` is make
// bench-avro) writes the same events from a second source database through
// Apicurio's AvroConverter and drains that topic with pgsink and with the
// JDBC sink, beside a pgsink drain of the JSON topic. It writes BENCHMARKS.md.
//
// Everything it creates is named bench_* (databases) or bench.* and
// bench_avro.* (topics),
// so it never touches what tests or the demo use; the workload topic is
// kept between runs and reused while it matches the workload's parameters.
package main
