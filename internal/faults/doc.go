// Package faults holds pgsink's test-only hooks in one place: the
// failpoints that make the process kill itself at a chosen point of the
// apply, the apply audit that makes a double apply fail loudly, and the
// switch that breaks the version guard for the fault suite's self-test.
// cmd/pgsink reads them from the environment (FromEnv) and passes them to
// the connector as options; nothing else reads these variables.
package faults
