// Package faults is pgsink's fault-injection suite (issue 7): it breaks the
// pipeline on purpose — pgsink killed at failpoints, a paused group member,
// Kafka Connect killed, a replay while instances run, poison records — and
// checks the invariants of DESIGN.md once the pipeline is quiet.
//
// The tests carry the integration build tag and run against the local stack
// (test/stack/stack.sh, addresses from $PGSINK_STACK_DIR/env). The short
// form runs by default; PGSINK_FAULTS=long adds the long scenarios, and
// PGSINK_FAULTS_RESULTS=path writes the results table there.
package faults
