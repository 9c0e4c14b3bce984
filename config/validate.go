package config

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// managedKafkaKeys are librdkafka properties pgsink sets itself because the
// exactly-once protocol depends on them (DESIGN.md, confluent-kafka-go
// specifics); the value says what to use instead.
var managedKafkaKeys = map[string]string{
	"enable.auto.offset.store":      "pgsink stores positions in PostgreSQL",
	"auto.offset.reset":             "use apply.start for partitions with no stored position",
	"partition.assignment.strategy": "pgsink needs cooperative-sticky",
}

// validator checks the rules that relate keys to each other, after decoding
// checked each key's type and range of values.
type validator struct {
	src      *source
	problems Problems
}

func (v *validator) fail(path, format string, args ...any) {
	if v.src.decodeFailed(path) {
		return
	}
	v.problems = append(v.problems, v.src.problem(path, format, args...))
}

func (c *Config) validate() Problems {
	v := &validator{src: c.source}
	v.kafka(c.Kafka)
	v.instance(c.Instance, c.Kafka)
	v.postgres(c.Postgres)
	v.debezium(c.Debezium)
	v.schemaRegistry(c)
	v.apply(c.Apply)
	v.consistency(c)
	if c.Postgres.SynchronousCommit == SynchronousCommitOff && c.Apply.Offsets == OffsetsKafka {
		// The position committed to Kafka after a commit PostgreSQL may
		// still lose: a crash would drop rows that are never redelivered.
		// With the offsets table, the position is lost with them.
		v.fail("postgres.synchronous_commit", "off would lose rows with apply.offsets: kafka (a crash can undo commits whose position Kafka already has); use it only with apply.offsets: table")
	}
	v.errors(c.Errors)
	v.positive("retention.tombstones", c.Retention.Tombstones)
	v.positive("retention.outbox_events", c.Retention.OutboxEvents)
	v.listen("metrics.listen", c.Metrics.Listen)
	v.positive("shutdown_timeout", c.ShutdownTimeout)
	v.intRange("verify.chunk_rows", c.Verify.ChunkRows, 1, maxVerifyChunkRows)
	if c.Verify.MaxRowsPerSecond < 0 {
		v.fail("verify.max_rows_per_second", "must be 0 (no bound) or more; got %d", c.Verify.MaxRowsPerSecond)
	}
	v.positive("verify.statement_timeout", c.Verify.StatementTimeout)
	v.positive("verify.settle_timeout", c.Verify.SettleTimeout)
	if len(c.Tables) == 0 {
		v.fail("tables", "at least one table is required")
	}
	for _, t := range c.Tables {
		v.table(t)
	}
	v.topicClaims(c.Tables)
	return v.problems
}

func (v *validator) kafka(props map[string]string) {
	for _, key := range []string{bootstrapServersKey, groupIDKey} {
		if props[key] == "" {
			v.fail(joinPath("kafka", key), "is required")
		}
	}
	for _, key := range sortedKeys(props) {
		if why, ok := managedKafkaKeys[key]; ok {
			v.fail(joinPath("kafka", key), "is set by pgsink and must not be configured (%s)", why)
			continue
		}
		if !kafkaProperties[key] {
			if near, ok := closestKafkaProperty(key); ok {
				v.fail(joinPath("kafka", key), "is not a property of the Kafka client (librdkafka); did you mean %s?", near)
			} else {
				v.fail(joinPath("kafka", key), "is not a property of the Kafka client (librdkafka): see its CONFIGURATION.md")
			}
		}
	}
}

func (v *validator) postgres(p Postgres) {
	if p.URL == "" {
		v.fail("postgres.url", "is required")
	}
	v.intRange("postgres.max_connections", p.MaxConnections, 1, maxConnectionsUpperBound)
	v.intRange("postgres.staging_tables_per_connection", p.StagingTablesPerConnection, 1, maxStagingTables)
	v.identifier("postgres.schema", p.Schema)
}

func (v *validator) debezium(d Debezium) {
	v.restEndpoint(restEndpoint{section: "debezium", urlKey: "connect_url", what: "Kafka Connect's REST API (such as http://connect:8083)",
		url: d.ConnectURL, user: d.User, password: d.Password, tlsCA: d.TLSCA})
}

// schemaRegistry checks schema_registry against the tables that need it.
func (v *validator) schemaRegistry(c *Config) {
	r := c.SchemaRegistry
	if r.URL == "" {
		// auto reads Avro whenever a record carries the magic byte: it needs
		// the registry as much as avro does.
		needs := c.Encoding
		for _, t := range c.Tables {
			if needs == EncodingJSON || needs == "" {
				needs = t.Encoding
			}
		}
		switch needs {
		case EncodingAvro:
			v.fail("schema_registry.url", "is required by encoding: avro")
		case EncodingAuto:
			v.fail("schema_registry.url", "is required by encoding: auto (a record with the Avro magic byte needs its schema)")
		}
	}
	v.restEndpoint(restEndpoint{section: "schema_registry", urlKey: "url",
		what: "the registry's Confluent-compatible API (such as http://registry:8081, or http://apicurio:8080/apis/ccompat/v7)",
		url:  r.URL, user: r.User, password: r.Password, tlsCA: r.TLSCA})
}

// restEndpoint is the address and credentials of a REST API pgsink reads.
type restEndpoint struct {
	section, urlKey, what      string
	url, user, password, tlsCA string
}

// restEndpoint checks an optional REST API's settings: an http(s) URL
// without credentials, query or fragment, and user, password and tls_ca
// only where they apply.
func (v *validator) restEndpoint(e restEndpoint) {
	key := func(k string) string { return e.section + "." + k }
	if e.url == "" {
		for k, set := range map[string]bool{"user": e.user != "", "password": e.password != "", "tls_ca": e.tlsCA != ""} {
			if set {
				v.fail(key(k), "has no use without %s", key(e.urlKey))
			}
		}
		return
	}
	u, err := url.Parse(e.url)
	switch {
	case err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https":
		// The value is not quoted: a malformed URL may carry credentials.
		v.fail(key(e.urlKey), "must be an http:// or https:// URL of %s", e.what)
		return
	case u.User != nil:
		v.fail(key(e.urlKey), "must not carry credentials; set %s and %s (from the environment) instead", key("user"), key("password"))
	case u.RawQuery != "" || u.Fragment != "":
		v.fail(key(e.urlKey), "must not have a query or fragment: pgsink appends the API's paths to it")
	}
	if e.password != "" && e.user == "" {
		v.fail(key("password"), "needs %s", key("user"))
	}
	if e.tlsCA != "" && u.Scheme != "https" {
		v.fail(key("tls_ca"), "applies to an https:// %s only", key(e.urlKey))
	}
}

func (v *validator) apply(a Apply) {
	v.intRange("apply.batch.max_records", a.Batch.MaxRecords, 1, maxBatchRecords)
	if a.Batch.MaxBytes < 1<<10 || a.Batch.MaxBytes > maxBatchBytes {
		v.fail("apply.batch.max_bytes", "must be between 1KiB and %s; got %s", ByteSize(maxBatchBytes), a.Batch.MaxBytes)
	} else if a.MaxBufferedBytes < a.Batch.MaxBytes {
		v.fail("apply.max_buffered_bytes", "must be at least apply.batch.max_bytes (%s); got %s", a.Batch.MaxBytes, a.MaxBufferedBytes)
	}
	v.intRange("apply.retry.max_attempts", a.Retry.MaxAttempts, 1, 1000)
	v.intRange("apply.pipeline", a.Pipeline, 1, maxPipeline)
	v.positive("apply.retry.initial_backoff", a.Retry.InitialBackoff)
	if a.Retry.MaxBackoff < a.Retry.InitialBackoff {
		v.fail("apply.retry.max_backoff", "must not be shorter than apply.retry.initial_backoff (%s); got %s", a.Retry.InitialBackoff, a.Retry.MaxBackoff)
	}
}

func (v *validator) errors(e Errors) {
	if e.DeadLetter.Topic != "" {
		v.topicName("errors.dead_letter.topic", e.DeadLetter.Topic)
	} else if e.DeadLetter.Destination == DestinationTopic {
		v.fail("errors.dead_letter.topic", "is required when destination is topic and kafka group.id is not set")
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.fail(path, "must be longer than 0")
	}
}

func (v *validator) intRange(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fail(path, "must be between %d and %d; got %d", lo, hi, n)
	}
}

func (v *validator) listen(path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.fail(path, "must be host:port (such as 127.0.0.1:9187); got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.fail(path, "has an invalid port %q", port)
	}
}

// identifier checks a column or schema name, which is taken literally (not
// parsed as SQL): only emptiness and PostgreSQL's length limit matter.
func (v *validator) identifier(path, name string) bool {
	switch {
	case name == "":
		v.fail(path, "must not be empty")
		return false
	case len(name) > maxIdentifierBytes:
		v.fail(path, "is longer than %d bytes, which PostgreSQL would truncate: %q", maxIdentifierBytes, name)
		return false
	case strings.ContainsRune(name, 0):
		v.fail(path, "must not contain a NUL character")
		return false
	}
	return true
}

// topicName applies Kafka's rules for topic names.
func (v *validator) topicName(path, topic string) {
	if topic == "" {
		v.fail(path, "must not be empty")
		return
	}
	if len(topic) > 249 || topic == "." || topic == ".." {
		v.fail(path, "is not a valid Kafka topic name: %q", topic)
		return
	}
	for _, r := range topic {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			v.fail(path, "is not a valid Kafka topic name (only letters, digits, '.', '_' and '-'): %q", topic)
			return
		}
	}
}

// names checks a list of names for empty entries and repeats.
func (v *validator) names(path string, list []string) {
	seen := map[string]bool{}
	for i, name := range list {
		p := indexPath(path, i)
		if !v.identifier(p, name) {
			continue
		}
		if seen[name] {
			v.fail(p, "%q is listed twice", name)
		}
		seen[name] = true
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
