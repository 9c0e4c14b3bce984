// Package debezium decodes Debezium records (table change events and Outbox
// Event Router records) into typed changes, with every PostgreSQL value exact.
//
// It must never import a Kafka client or build SQL: it turns bytes into values
// and nothing else, so it can be tested against recorded fixtures alone.
package debezium
