// Package faults is pgsink's fault-injection suite (issue 7): it breaks the
// pipeline on purpose — pgsink killed at failpoints, the apply connection
// terminated during COMMIT, a paused group member, a rebalance storm, the
// broker, PostgreSQL and Kafka Connect killed, a replay while instances
// run, a re-published range, poison records, a source ADD COLUMN, a source
// ADD, RENAME and DROP COLUMN under schema.evolve: follow, the broker or
// Connect killed during Debezium's initial snapshot, a lost replication slot
// with deletes in the gap, a target corrupted by hand and healed by
// pgsink verify --repair, a static member paused while its replacement
// takes its name (and status seeing a killed owner gone) — and
// checks the invariants of DESIGN.md once the pipeline is quiet, for the
// table rows and for the outbox events the workload writes beside them.
//
// Each kill scenario (1, 3, 4, 5, 7) aims its fault at a phase (phase_integration_test.go):
// in streaming, once the initial snapshot is swept, and, as 1s, 3s, 4s, 5s
// and 7s, while Debezium takes the initial snapshot (5s, 7s) or pgsink
// applies it (1s, 3s, 4s), on a seed large enough to be seen running; a
// scenario aimed at the snapshot fails if none of its faults fell in it.
// Scenarios run on JSON; 1a, 7a and 9a are 1, 7 and 9 over Avro
// (encoding_integration_test.go): Debezium on Apicurio's Avro converter,
// pgsink on encoding: avro through the stack's registry. 1t, 3t, 4t, 6t and
// 7t are 1, 3, 4, 6 and 7 under apply.consistency: transaction
// (txbank_integration_test.go): Debezium with transaction metadata, a bank
// workload in every source transaction, and the T invariant — a reader in
// REPEATABLE READ never sees part of a source transaction, each is
// resolved once; 6t's reader reconnects after PostgreSQL's restart and must
// check snapshots after it, and, its tx_staged and staging marker logged,
// no partition may rewind for the crash; 6tu is 6t with
// apply.transaction.staging: unlogged, whose crash empties tx_staged and
// the marker (the partitions see the reset and stage again from past what
// the resolver applied); 6f, 6tf and 6tfu fail the target over to an
// asynchronous standby of a server of the test's own, promoted while pgsink
// commits on the primary (and a third instance claims), so that positions
// and claims go back, in partition mode, transaction mode and transaction
// mode with unlogged staging (failover_integration_test.go);
// 7t kills a pgsink instance while Connect is
// down; 1ta is
// 1t over Avro, the transaction topic's markers included. A
// self-test corrupts the target under T as the other self-test does under
// the rest. 1p and 4p are 1 and 4 with apply.pipeline 2: two transactions
// of a partition in flight when an instance dies, and a check that the
// pipeline engaged.
//
// The tests carry the integration build tag and run against the local stack
// (test/stack/stack.sh, addresses from $PGSINK_STACK_DIR/env). The short
// form (scenarios 1, 3, 4t, 4p, 7, 9, 10, the static member zombie, the dead
// owner in status, and the self-tests) runs by default;
// PGSINK_FAULTS=long adds the long scenarios (1s, 2, 3s, 4, 4s, 5, 5s, 6,
// 7s, 8, 11, 12, 13, 14, 15 — two instances over 500 tables with a
// rebalance under load —, 6f, 1a, 7a, 9a on Avro, 1t, 3t, 6t, 6tu, 6tf,
// 6tfu, 7t in transaction mode, 1ta in transaction mode on Avro, and 1p), and
// PGSINK_FAULTS_RESULTS=path writes the results table there.
// BenchmarkIntegrationResumeAfterKill (make bench-restart) measures resume
// after kill -9 per group membership; BenchmarkIntegrationFleet (make
// bench-fleet) the costs of one instance over 500 tables.
package faults
