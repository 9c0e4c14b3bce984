// Package fidelity holds the fidelity matrix: the PostgreSQL types and
// values the end-to-end fidelity test round-trips through Debezium and
// pgsink (cases.go), how each outcome is classified, and how the matrix is
// rendered into docs/fidelity.md and checked against the committed
// expectations. It runs nothing itself: test/e2e's fidelity test drives the
// real stack with it.
package fidelity
