package config

import "slices"

// consistency checks apply.consistency and, for transaction, what the
// resolver needs that can be checked without Kafka: its topic named, not
// also a table's, and positions kept in PostgreSQL, where the staging and
// the resolver's fencing live; and it refuses outbox tables, whose events
// the Outbox Event Router cuts from their transaction. validate checks the
// topic's partitions and the connector's provide.transaction.metadata
// against the running system.
func (v *validator) consistency(c *Config) {
	if c.Apply.Consistency != ConsistencyTransaction {
		if c.Apply.Transaction.DirectLocalPartitions {
			v.fail("apply.transaction.direct_local_partitions", "is for apply.consistency: transaction only (its resolver takes the local partitions' records); this file's consistency is %s", c.Apply.Consistency)
		}
		return
	}
	tx := c.Apply.Transaction
	v.positive("apply.transaction.max_wait", tx.MaxWait)
	if tx.MaxStagedBytes <= 0 {
		v.fail("apply.transaction.max_staged_bytes", "must be positive: it bounds what a partition stages ahead of the resolver; got %s", tx.MaxStagedBytes)
	}
	if tx.Topic == "" {
		v.fail("apply.transaction.topic", "is required with apply.consistency: transaction: the connector's transaction metadata topic (<topic.prefix>.transaction, with provide.transaction.metadata=true)")
	} else {
		v.topicName("apply.transaction.topic", tx.Topic)
		for _, t := range c.Tables {
			if t.Topic == tx.Topic || slices.Contains(t.Topics, tx.Topic) || t.TopicPattern.Match(tx.Topic) {
				v.fail(t.Path, "routes the transaction metadata topic %q to a table; apply.transaction.topic is read by the resolver, not applied", tx.Topic)
			}
		}
	}
	// The resolver reads the transaction topic in the file's encoding (no
	// table claims the topic), and a connector writes all its topics, the
	// transaction topic too, with its one value converter: a table in
	// Avro under a file in JSON would have its connector's markers read as
	// JSON.
	if c.Encoding == EncodingJSON {
		for _, t := range c.Tables {
			if t.Encoding == EncodingAvro {
				v.fail(t.Path+".encoding", avroTransactionTopic)
			}
		}
	}
	for _, t := range c.Tables {
		if t.Format == FormatOutbox {
			v.fail(t.Path+".format", outboxTransaction)
		}
	}
	if c.Apply.Pipeline > 1 {
		v.fail("apply.pipeline", "must be 1 with apply.consistency: transaction: partitions stage records and the resolver applies them one transaction at a time; got %d", c.Apply.Pipeline)
	}
	if c.Apply.Offsets != OffsetsTable {
		v.fail("apply.offsets", "must be table with apply.consistency: transaction: staging and the resolver's fencing keep their positions in PostgreSQL; got %s", c.Apply.Offsets)
	}
}

const avroTransactionTopic = "avro under the file's encoding: json cannot be used with apply.consistency: transaction: the resolver reads apply.transaction.topic in the file's encoding, and a connector writing this table in Avro writes its transaction markers in Avro too; set encoding: avro (or auto) at the top of the file"

const outboxTransaction = "outbox cannot be used with apply.consistency: transaction: Debezium's Outbox Event Router keeps only the outbox row's columns, not the event's transaction block (no router option carries it over), " +
	"and drops the outbox table's updates and deletes, which the transaction's END counts all the same, so pgsink can neither stage these events with their transaction nor see its END complete (docs/transactions.md, Outbox tables); " +
	"read the outbox topics with a second pgsink under another group.id with apply.consistency: partition"
