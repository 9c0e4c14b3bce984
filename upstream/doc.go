// Package upstream reads the Debezium connectors' settings from Kafka
// Connect's REST API and reports, per pgsink table and target column, each
// setting that loses or may lose data before it reaches pgsink.
//
// It only reads: it never changes a connector, and never prints a credential.
// It does not connect to the source database, so a target column's type
// stands for its source column's.
package upstream
