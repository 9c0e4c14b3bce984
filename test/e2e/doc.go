// Package e2e holds end-to-end tests against the real local stack
// (PostgreSQL, Kafka, Kafka Connect with Debezium). They carry the
// `integration` build tag; `make test` starts the stack and runs them.
package e2e
