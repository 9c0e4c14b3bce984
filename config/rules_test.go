package config

import (
	"slices"
	"strings"
	"testing"
)

// TestRules checks every validation rule: each case is the minimal header
// followed by body, and lists exactly the "path: message" problems expected.
func TestRules(t *testing.T) {
	const table = "tables:\n  - topic: app.public.t\n    target: public.t\n"
	tests := []struct {
		name string
		body string // appended to minimalHeader
		src  string // the whole file instead, when the header itself is tested
		want []string
	}{
		{name: "valid minimal", body: table},
		{name: "no tables", body: "", want: []string{"tables: at least one table is required"}},
		{name: "unknown top-level key", body: table + "tabels: []\n", want: []string{`tabels: unknown key (did you mean "tables"?)`}},
		{name: "unknown nested key", body: table + "    deletez: hard\n", want: []string{`tables[0].deletez: unknown key (did you mean "deletes"?)`}},
		{name: "duplicate key", body: table + "    target: public.u\n", want: []string{"tables[0].target: duplicate key (first on line 8)"}},
		{name: "kafka key misspelt", src: "kafka: { bootstrap.servers: k, group.id: g, fetch.max.bytez: 1048576 }\npostgres: { url: u }\n" + table, want: []string{"kafka.fetch.max.bytez: is not a property of the Kafka client (librdkafka); did you mean fetch.max.bytes?"}},
		{name: "kafka key unknown", src: "kafka: { bootstrap.servers: k, group.id: g, turbo: on }\npostgres: { url: u }\n" + table, want: []string{"kafka.turbo: is not a property of the Kafka client (librdkafka): see its CONFIGURATION.md"}},
		{name: "kafka value not scalar", src: "kafka: { bootstrap.servers: [a, b], group.id: g }\npostgres: { url: u }\n" + table, want: []string{"kafka.bootstrap.servers: must be a single value, not a list"}},
		{name: "int not a number", body: table + "apply: { batch: { max_records: many } }\n", want: []string{`apply.batch.max_records: must be an integer; got "many"`}},
		{name: "int out of range", body: table + "apply: { batch: { max_records: 0 } }\n", want: []string{"apply.batch.max_records: must be between 1 and 1000000; got 0"}},
		{name: "bool wrong", body: table + "    version: { guard: maybe }\n", want: []string{`tables[0].version.guard: must be true or false; got "maybe"`}},
		{name: "instance name", body: table + "instance: { name: pgsink-0 }\n"},
		{name: "instance name not a group.instance.id", body: table + "instance: { name: 'pgsink 0' }\n", want: []string{`instance.name: is not a valid Kafka group.instance.id (only letters, digits, '.', '_' and '-'): "pgsink 0"`}},
		{name: "instance name and group.instance.id differ", src: "kafka: { bootstrap.servers: k, group.id: g, group.instance.id: a }\npostgres: { url: u }\ninstance: { name: b }\n" + table, want: []string{`kafka.group.instance.id: conflicts with instance.name "b": set only instance.name (or PGSINK_INSTANCE_NAME), which pgsink passes on as group.instance.id`}},
		{name: "mapping for scalar", body: table + "shutdown_timeout: { s: 1 }\n", want: []string{"shutdown_timeout: must be a single value, not a mapping"}},
		{name: "list for mapping", body: table + "log: [json]\n", want: []string{"log: must be a mapping of keys, not a list"}},
		{name: "scalar for list", body: "tables: app\n", want: []string{"tables: must be a list, not a single value"}},
		{name: "bad duration", body: table + "shutdown_timeout: 30\n", want: []string{`shutdown_timeout: must be a duration such as 100ms, 30s or 168h; got "30"`}},
		{name: "zero duration", body: table + "shutdown_timeout: 0s\n", want: []string{"shutdown_timeout: must be longer than 0"}},
		{name: "negative duration", body: table + "retention: { tombstones: -1h }\n", want: []string{"retention.tombstones: must not be negative; got -1h"}},
		{name: "bad size", body: table + "apply: { batch: { max_bytes: 16 MiBs } }\n", want: []string{`apply.batch.max_bytes: must be a size such as 16MiB, 512KiB or 1000000; got "16 MiBs"`}},
		{name: "size out of range", body: table + "apply: { batch: { max_bytes: 2GiB } }\n", want: []string{"apply.batch.max_bytes: must be between 1KiB and 1GiB; got 2GiB"}},
		{name: "buffer below batch", body: table + "apply: { max_buffered_bytes: 1MiB }\n", want: []string{"apply.max_buffered_bytes: must be at least apply.batch.max_bytes (16MiB); got 1MiB"}},
		{name: "backoff order", body: table + "apply: { retry: { initial_backoff: 5s, max_backoff: 1s } }\n", want: []string{"apply.retry.max_backoff: must not be shorter than apply.retry.initial_backoff (5s); got 1s"}},
		{name: "staging_tables_per_connection range", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u, staging_tables_per_connection: 0 }\n" + table, want: []string{"postgres.staging_tables_per_connection: must be between 1 and 100000; got 0"}},
		{name: "max_connections range", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u, max_connections: 0 }\n" + table, want: []string{"postgres.max_connections: must be between 1 and 256; got 0"}},
		{name: "tolerance", body: table + "errors: { tolerance: some }\n", want: []string{`errors.tolerance: must be one of all, none; got "some"`}},
		{name: "offsets", body: table + "apply: { offsets: postgres }\n", want: []string{`apply.offsets: must be one of table, kafka; got "postgres"`}},
		{name: "offsets kafka", body: table + "apply: { offsets: kafka }\n"},
		{name: "consistency", body: table + "apply: { consistency: serial }\n", want: []string{`apply.consistency: must be one of partition, transaction; got "serial"`}},
		{name: "consistency transaction", body: table + "apply: { consistency: transaction, transaction: { topic: app.transaction } }\n"},
		{name: "local partitions", body: table + "apply: { consistency: transaction, transaction: { topic: app.transaction, direct_local_partitions: true } }\n"},
		{name: "local partitions in partition mode", body: table + "apply: { transaction: { direct_local_partitions: true } }\n", want: []string{"apply.transaction.direct_local_partitions: is for apply.consistency: transaction only (its resolver takes the local partitions' records); this file's consistency is partition"}},
		{name: "consistency transaction without topic", body: table + "apply: { consistency: transaction }\n", want: []string{"apply.transaction.topic: is required with apply.consistency: transaction: the connector's transaction metadata topic (<topic.prefix>.transaction, with provide.transaction.metadata=true)"}},
		{name: "consistency transaction topic routed", body: "tables:\n  - topic_pattern: 'app\\..*'\n    target: public.t\napply: { consistency: transaction, transaction: { topic: app.transaction, max_wait: 0s } }\n", want: []string{
			"apply.transaction.max_wait: must be longer than 0",
			`tables[0]: routes the transaction metadata topic "app.transaction" to a table; apply.transaction.topic is read by the resolver, not applied`,
		}},
		{name: "consistency transaction kafka offsets", body: table + "apply: { offsets: kafka, consistency: transaction, transaction: { topic: app.transaction } }\n", want: []string{"apply.offsets: must be table with apply.consistency: transaction: staging and the resolver's fencing keep their positions in PostgreSQL; got kafka"}},
		{name: "consistency transaction pipelined", body: table + "apply: { pipeline: 2, consistency: transaction, transaction: { topic: app.transaction } }\n", want: []string{"apply.pipeline: must be 1 with apply.consistency: transaction: partitions stage records and the resolver applies them one transaction at a time; got 2"}},
		{name: "consistency transaction avro", body: table + "encoding: avro\nschema_registry: { url: 'http://r:8081' }\napply: { consistency: transaction, transaction: { topic: app.transaction } }\n"},
		{name: "consistency transaction table avro", body: "tables:\n  - topic: app.public.t\n    target: public.t\n    encoding: avro\nschema_registry: { url: 'http://r:8081' }\napply: { consistency: transaction, transaction: { topic: app.transaction } }\n", want: []string{"tables[0].encoding: avro under the file's encoding: json cannot be used with apply.consistency: transaction: the resolver reads apply.transaction.topic in the file's encoding, and a connector writing this table in Avro writes its transaction markers in Avro too; set encoding: avro (or auto) at the top of the file"}},
		{name: "consistency transaction table avro under auto", body: "encoding: auto\ntables:\n  - topic: app.public.t\n    target: public.t\n    encoding: avro\nschema_registry: { url: 'http://r:8081' }\napply: { consistency: transaction, transaction: { topic: app.transaction } }\n"},
		{name: "consistency transaction auto", body: table + "encoding: auto\nschema_registry: { url: 'http://r:8081' }\napply: { consistency: transaction, transaction: { topic: app.transaction } }\n"},
		{name: "consistency transaction outbox", body: "tables:\n  - topic: outbox.event.Order\n    format: outbox\n    target: public.o\n    key: [id]\napply: { consistency: transaction, transaction: { topic: app.transaction } }\n", want: []string{
			"tables[0].format: outbox cannot be used with apply.consistency: transaction: Debezium's Outbox Event Router keeps only the outbox row's columns, not the event's transaction block (no router option carries it over), " +
				"and drops the outbox table's updates and deletes, which the transaction's END counts all the same, so pgsink can neither stage these events with their transaction nor see its END complete (docs/transactions.md, Outbox tables); " +
				"read the outbox topics with a second pgsink under another group.id with apply.consistency: partition",
		}},
		{name: "transaction topic ignored in partition mode", body: table + "apply: { transaction: { topic: 'not checked' } }\n"},
		{name: "start", body: table + "apply: { start: beginning }\n", want: []string{`apply.start: must be one of earliest, latest; got "beginning"`}},
		{name: "synchronous_commit", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u, synchronous_commit: true }\n" + table, want: []string{`postgres.synchronous_commit: must be one of on, off; got "true"`}},
		{name: "synchronous_commit off with kafka offsets", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u, synchronous_commit: off }\napply: { offsets: kafka }\n" + table, want: []string{"postgres.synchronous_commit: off would lose rows with apply.offsets: kafka (a crash can undo commits whose position Kafka already has); use it only with apply.offsets: table"}},
		{name: "synchronous_commit off", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u, synchronous_commit: off }\n" + table},
		{name: "postgres schema empty", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u, schema: '' }\n" + table, want: []string{"postgres.schema: must not be empty"}},
		{name: "postgres url missing", src: "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { schema: s }\n" + table, want: []string{"postgres.url: is required"}},
		{name: "log format", body: table + "log: { format: text, level: loud }\n", want: []string{
			`log.format: must be one of json, console; got "text"`,
			`log.level: must be one of debug, info, warn, error; got "loud"`,
		}},
		{name: "metrics listen", body: table + "metrics: { listen: localhost }\n", want: []string{`metrics.listen: must be host:port (such as 127.0.0.1:9187); got "localhost"`}},
		{name: "dead letter topic name", body: table + "errors: { dead_letter: { topic: 'bad topic' } }\n", want: []string{`errors.dead_letter.topic: is not a valid Kafka topic name (only letters, digits, '.', '_' and '-'): "bad topic"`}},
		{name: "dead letter table removed", body: table + "errors: { dead_letter: { table: audit.failures } }\n", want: []string{"errors.dead_letter.table: is no longer a setting (it was never honoured): dead letters always go to <postgres.schema>.dead_letters; delete this line"}},
		{name: "dead letter destination", body: table + "errors: { dead_letter: { destination: kafka } }\n", want: []string{`errors.dead_letter.destination: must be one of table, topic; got "kafka"`}},
		{name: "kafka required keys", src: "kafka: { client.id: x }\npostgres: { url: u }\n" + table, want: []string{"kafka.bootstrap.servers: is required", "kafka.group.id: is required"}},
		{name: "managed kafka key", src: "kafka: { bootstrap.servers: k, group.id: g, auto.offset.reset: earliest }\npostgres: { url: u }\n" + table, want: []string{"kafka.auto.offset.reset: is set by pgsink and must not be configured (use apply.start for partitions with no stored position)"}},
		{name: "encoding avro", body: "encoding: avro\nschema_registry: { url: 'https://registry:8081', user: u, password: p, tls_ca: ca.pem }\n" + table},
		{name: "encoding avro needs a registry", body: "encoding: avro\n" + table, want: []string{"schema_registry.url: is required by encoding: avro"}},
		{name: "table encoding avro needs a registry", body: table + "    encoding: avro\n", want: []string{"schema_registry.url: is required by encoding: avro"}},
		{name: "encoding unknown", body: "encoding: protobuf\n" + table, want: []string{`encoding: must be one of json, avro, auto; got "protobuf"`}},
		{name: "encoding auto", body: "encoding: auto\nschema_registry: { url: 'http://registry:8081' }\n" + table},
		{name: "encoding auto needs a registry", body: "encoding: auto\n" + table, want: []string{"schema_registry.url: is required by encoding: auto"}},
		{name: "table encoding auto needs a registry", body: table + "    encoding: auto\n", want: []string{"schema_registry.url: is required by encoding: auto"}},
		{name: "schema registry credentials in url", body: "schema_registry: { url: 'http://u:secret@registry:8081' }\n" + table, want: []string{"schema_registry.url: must not carry credentials; set schema_registry.user and schema_registry.password (from the environment) instead"}},
		{name: "schema registry password alone", body: "schema_registry: { password: p }\n" + table, want: []string{"schema_registry.password: has no use without schema_registry.url"}},
		{name: "outbox over avro", body: "schema_registry: { url: 'http://registry:8081' }\ntables:\n  - topic: outbox.event.Order\n    format: outbox\n    encoding: avro\n    target: public.o\n    key: [id]\n"},
		{name: "debezium connect_url", body: table + "debezium: { connect_url: 'https://connect:8443', user: u, password: p, tls_ca: ca.pem }\n"},
		{name: "debezium connect_url scheme", body: table + "debezium: { connect_url: 'connect:8083' }\n", want: []string{"debezium.connect_url: must be an http:// or https:// URL of Kafka Connect's REST API (such as http://connect:8083)"}},
		{name: "debezium credentials in url", body: table + "debezium: { connect_url: 'http://u:secret@connect:8083' }\n", want: []string{"debezium.connect_url: must not carry credentials; set debezium.user and debezium.password (from the environment) instead"}},
		{name: "debezium url query", body: table + "debezium: { connect_url: 'http://connect:8083/?x=1' }\n", want: []string{"debezium.connect_url: must not have a query or fragment: pgsink appends the API's paths to it"}},
		{name: "debezium password without user", body: table + "debezium: { connect_url: 'http://connect:8083', password: p }\n", want: []string{"debezium.password: needs debezium.user"}},
		{name: "debezium tls_ca on http", body: table + "debezium: { connect_url: 'http://connect:8083', tls_ca: ca.pem }\n", want: []string{"debezium.tls_ca: applies to an https:// debezium.connect_url only"}},
		{name: "debezium settings without url", body: table + "debezium: { user: u }\n", want: []string{"debezium.user: has no use without debezium.connect_url"}},
		{name: "alias refused", body: table + "  - topic: b\n    target: &t public.u\n  - topic: c\n    target: *t\n", want: []string{"tables[2].target: YAML aliases (*t) are not supported"}},
		{name: "env missing", body: table + "    key:\n      - ${NOPE}\n      - 'x${ALSO_NOT}'\n", want: []string{"tables[0].key[0]: environment variable NOPE is not set", "tables[0].key[1]: environment variable ALSO_NOT is not set"}},
		{name: "env value not echoed", body: table + "shutdown_timeout: ${KAFKA_PASSWORD}\n", want: []string{`shutdown_timeout: must be a duration such as 100ms, 30s or 168h; got "${KAFKA_PASSWORD}"`}},
		{name: "null keeps default", body: table + "log:\n"},

		// topic sources
		{name: "no topic", body: "tables:\n  - target: public.t\n", want: []string{"tables[0]: one of topic, topics or topic_pattern is required"}},
		{name: "topic and topics", body: table + "    topics: [a]\n", want: []string{"tables[0].topics: only one of topic, topics and topic_pattern may be set; topic is set too"}},
		{name: "topic and pattern", body: table + "    topic_pattern: 'app\\..*'\n", want: []string{"tables[0].topic_pattern: only one of topic, topics and topic_pattern may be set; topic is set too"}},
		{name: "bad regexp", body: "tables:\n  - topic_pattern: 'app.(['\n    target: public.t\n", want: []string{"tables[0].topic_pattern: is not a valid regular expression: error parsing regexp: missing closing ]: `[`"}},
		{name: "empty topics", body: "tables:\n  - topics: []\n    target: public.t\n", want: []string{"tables[0].topics: must list at least one topic"}},
		{name: "topics repeated", body: "tables:\n  - topics: [a, a]\n    target: public.t\n", want: []string{`tables[0].topics[1]: "a" is listed twice`}},
		{name: "invalid topic name", body: "tables:\n  - topic: 'a/b'\n    target: public.t\n", want: []string{`tables[0].topic: is not a valid Kafka topic name (only letters, digits, '.', '_' and '-'): "a/b"`}},
		{name: "topic claimed twice", body: table + "  - topics: [b, app.public.t]\n    target: public.u\n", want: []string{`tables[1].topics[1]: topic "app.public.t" is already claimed by tables[0] (line 7)`}},
		{name: "pattern claimed twice", body: "tables:\n  - topic_pattern: 'a.*'\n    target: public.t\n  - topic_pattern: 'a.*'\n    target: public.u\n", want: []string{`tables[1].topic_pattern: pattern "a.*" is already claimed by tables[0] (line 7)`}},

		// targets
		{name: "target missing", body: "tables:\n  - topic: a\n", want: []string{"tables[0].target: is required (schema.table)"}},
		{name: "target unqualified", body: "tables:\n  - topic: a\n    target: customers\n", want: []string{`tables[0].target: must be schema-qualified (schema.table); got "customers"`}},
		{name: "target bad quote", body: "tables:\n  - topic: a\n    target: 'public.\"Order'\n", want: []string{`tables[0].target: is not a valid name: unterminated quote; got "public.\"Order"`}},
		{name: "target three parts", body: "tables:\n  - topic: a\n    target: db.public.t\n", want: []string{`tables[0].target: must be schema-qualified (schema.table); got "db.public.t"`}},
		{name: "target injection", body: "tables:\n  - topic: a\n    target: 'public.t; drop table x'\n", want: []string{`tables[0].target: is not a valid name: unexpected ";" after "t"; got "public.t; drop table x"`}},

		// columns
		{name: "include and exclude", body: table + "    columns: { include: [a], exclude: [b] }\n", want: []string{"tables[0].columns.exclude: include and exclude cannot both be set: include lists every field written"}},
		{name: "rename to duplicate", body: table + "    columns: { rename: { a: x, b: x } }\n", want: []string{`tables[0].columns.rename.b: renames "b" to "x", which "a" is already renamed to`}},
		{name: "rename onto included field", body: table + "    columns: { include: [a, x], rename: { a: x } }\n", want: []string{`tables[0].columns.rename.a: renames "a" to "x", which is also an included field's name`}},
		{name: "rename excluded", body: table + "    columns: { exclude: [a], rename: { a: b } }\n", want: []string{`tables[0].columns.rename.a: renames "a", which is excluded`}},
		{name: "rename not included", body: table + "    columns: { include: [b], rename: { a: c } }\n", want: []string{`tables[0].columns.rename.a: renames "a", which is not in include`}},
		{name: "rename to empty", body: table + "    columns: { rename: { a: '' } }\n", want: []string{"tables[0].columns.rename.a: must not be empty"}},
		{name: "key excluded", body: table + "    key: [id]\n    columns: { exclude: [id] }\n", want: []string{`tables[0].key[0]: names column "id", which columns.exclude drops`}},
		{name: "key not included", body: table + "    key: [id]\n    columns: { include: [name] }\n", want: []string{`tables[0].key[0]: names column "id", which no field in columns.include is written to`}},
		{name: "key included under a new name", body: table + "    key: [id]\n    columns: { include: [ID], rename: { ID: id } }\n"},
		{name: "key repeated", body: table + "    key: [id, id]\n", want: []string{`tables[0].key[1]: "id" is listed twice`}},
		{name: "long column", body: table + "    key: [" + strings.Repeat("k", 64) + "]\n", want: []string{`tables[0].key[0]: is longer than 63 bytes, which PostgreSQL would truncate: "` + strings.Repeat("k", 64) + `"`}},

		// deletes and versions
		{name: "deletes value", body: table + "    deletes: sof\n", want: []string{`tables[0].deletes: must be one of hard, soft, ignore; got "sof"`}},
		{name: "soft_delete without soft", body: table + "    soft_delete: { column: gone }\n", want: []string{"tables[0].soft_delete: applies only with deletes: soft (deletes is hard)"}},
		{name: "soft delete ok", body: table + "    deletes: soft\n    soft_delete: { column: gone }\n"},
		{name: "soft delete column empty", body: table + "    deletes: soft\n    soft_delete: { column: '' }\n", want: []string{"tables[0].soft_delete.column: must not be empty"}},
		{name: "truncate value", body: table + "    truncate: yes\n", want: []string{`tables[0].truncate: must be one of apply, ignore; got "yes"`}},
		{name: "version columns equal", body: table + "    version: { commit_column: v, lsn_column: v }\n", want: []string{`tables[0].version.lsn_column: must differ from commit_column (both are "v")`}},
		{name: "version column is key", body: table + "    key: [_pgsink_lsn]\n", want: []string{`tables[0].key: "_pgsink_lsn" is also a version column`}},
		{name: "version off refused", body: table + "    version: { guard: false, commit_column: '' }\n", want: []string{"tables[0].version.guard: false is not supported: the guard is what makes replays safe"}},
		{name: "version off on outbox", body: "tables:\n  - topic: o\n    format: outbox\n    target: public.orders\n    key: [id]\n    version: { guard: false }\n"},
		{name: "evolve value", body: table + "    schema: { evolve: everything }\n", want: []string{`tables[0].schema.evolve: must be one of none, add_columns, follow, strict; got "everything"`}},

		// formats
		{name: "format value", body: table + "    format: avro\n", want: []string{`tables[0].format: must be one of table, outbox; got "avro"`}},
		{name: "payload without outbox", body: table + "    payload: { id: $.id }\n", want: []string{"tables[0].payload: applies only to format: outbox"}},
		{name: "event_types without outbox", body: table + "    event_types: [A]\n", want: []string{"tables[0].event_types: applies only to format: outbox"}},
		{name: "outbox without key", body: "tables:\n  - topic: outbox.event.Order\n    format: outbox\n    target: public.orders\n", want: []string{"tables[0].key: is required for format: outbox (the target columns that identify an event's row)"}},
		{name: "outbox valid", body: "tables:\n  - topic: outbox.event.Order\n    format: outbox\n    target: public.orders\n    key: [id]\n    payload: { id: $.id, total: \"$['total amount']\", sku: '$.lines[0].sku' }\n"},
		{name: "outbox key not in payload", body: "tables:\n  - topic: o\n    format: outbox\n    target: public.orders\n    key: [id]\n    payload: { order_id: $.id }\n", want: []string{`tables[0].key[0]: names column "id", which payload does not map`}},
		{name: "outbox with table keys", body: "tables:\n  - topic: o\n    format: outbox\n    target: public.orders\n    key: [id]\n    deletes: soft\n    columns: { exclude: [a] }\n    schema: { create: true }\n", want: []string{
			"tables[0].columns: applies only to format: table (outbox columns come from payload)",
			"tables[0].deletes: applies only to format: table (outbox columns come from payload)",
			"tables[0].schema.create: applies only to format: table: an outbox payload carries no column types",
		}},
		{name: "bad json path", body: "tables:\n  - topic: o\n    format: outbox\n    target: public.orders\n    key: [id]\n    payload: { id: id, n: '$.a[x]', m: '$..b' }\n", want: []string{
			`tables[0].payload.id: must be a JSON path starting with $ (such as $.id); got "id"`,
			`tables[0].payload.m: is not a valid JSON path: empty member name; got "$..b"`,
			`tables[0].payload.n: is not a valid JSON path: array index "x" is not a non-negative integer; got "$.a[x]"`,
		}},
		{name: "payload into version column", body: "tables:\n  - topic: o\n    format: outbox\n    target: public.orders\n    key: [id]\n    payload: { id: $.id, _pgsink_lsn: $.lsn }\n", want: []string{`tables[0].payload._pgsink_lsn: maps a payload value to the version column "_pgsink_lsn"`}},
		{name: "event types repeated", body: "tables:\n  - topic: o\n    format: outbox\n    target: public.orders\n    key: [id]\n    event_types: [A, A]\n", want: []string{`tables[0].event_types[1]: "A" is listed twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := minimalHeader + tt.body
			if tt.src != "" {
				src = tt.src
			}
			_, problems := parse(t, src)
			got := problemTexts(problems)
			for _, want := range tt.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
					t.Errorf("missing problem %q\ngot:\n  %s", want, strings.Join(got, "\n  "))
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n  %s", len(got), len(tt.want), strings.Join(got, "\n  "))
			}
		})
	}
}
