// Package stacktest gives integration and end-to-end tests the local stack of
// test/stack: its addresses, a fresh database and topic prefix per test,
// Debezium connector registration over Connect's REST API, and teardown.
//
// It must never skip a test: when the stack is not up, the test fails and says
// how to start it (`make stack-up`).
package stacktest
