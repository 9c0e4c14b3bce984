package connector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the connector's Prometheus series. Tables are labelled by
// their schema-qualified target name, partitions by topic and number.
type Metrics struct {
	Consumed    *prometheus.CounterVec // topic
	Applied     *prometheus.CounterVec // table, op (upsert|delete|truncate)
	DeadLetters *prometheus.CounterVec // topic, destination
	Skipped     *prometheus.CounterVec // topic, reason (no_table|not_owned|below_position|no_write)
	Fenced      prometheus.Counter     // batches rejected because another owner holds the epoch
	// TargetWentBack, per topic: a partition's stored claim or position
	// found behind what this instance committed (the target lost commits).
	TargetWentBack *prometheus.CounterVec
	Unresolved     *prometheus.CounterVec // table: rows created with unchanged-TOAST columns nobody holds
	// UndetectableMoves, per table: updates whose before image lacks the
	// configured key, so a key change would go unseen.
	UndetectableMoves *prometheus.CounterVec
	// CompactedDeletes, per topic: tombstones whose delete event log
	// compaction removed (watchTombstones).
	CompactedDeletes *prometheus.CounterVec
	Rebalances       *prometheus.CounterVec // kind (assigned|revoked|lost)
	BatchRecords     prometheus.Histogram   // records per applied batch
	ApplySeconds     prometheus.Histogram   // duration of one Apply
	ConnectionWait   prometheus.Histogram   // the wait for a pool connection in one Apply
	Lag              *prometheus.GaugeVec   // topic, partition: high watermark - stored position
	Owned            prometheus.Gauge       // partitions this instance applies
	// AwaitingClaim counts the partitions assigned to this instance whose
	// claim waits for the target to be back (awaitingClaims).
	AwaitingClaim prometheus.Gauge
	Buffered      prometheus.Gauge   // fetched but unapplied records, decoded items included
	Retries       prometheus.Counter // transient errors retried
	// UnavailableRetries counts attempts that found the target down, live.
	UnavailableRetries prometheus.Counter
	PipelineRetries    prometheus.Counter // followers applied again after racing their predecessor
	Pipelined          prometheus.Counter // transactions sent while another of their partition was in flight
	// Panics counts panics recovered, by where: decode (decoding or
	// routing a record), apply (writing a span), worker (anywhere else in
	// a partition's worker, which then stops).
	Panics *prometheus.CounterVec
	// InsertConflicts counts batches applied a second time, with upserts
	// only, after a create met a key the target already held.
	InsertConflicts *prometheus.CounterVec // table
	// Splits counts transactions refused for a record's data without
	// naming it, applied again in halves.
	Splits  *prometheus.CounterVec // table
	Stopped *prometheus.GaugeVec   // topic, partition: 1 when a partition stopped on an error
	// SchemaWaits counts retries of a record whose Avro schema the
	// registry could not serve; SchemaWaiting is 1 while a partition waits.
	SchemaWaits   *prometheus.CounterVec // topic
	SchemaWaiting *prometheus.GaugeVec   // topic, partition
	EndToEnd      prometheus.Histogram   // Kafka append time to target commit
	// RecordLatency is EndToEnd for every applied record, with buckets fine
	// enough (25% apart) to read a p99 from.
	RecordLatency prometheus.Histogram
	// ReceiveLatency is the part of RecordLatency before pgsink's batching
	// and apply: Kafka's delivery, pgsink's fetch buffer, and the wait
	// behind the partition's batch in flight.
	ReceiveLatency prometheus.Histogram
	// ReceiveLatency in two stages: DispatchLatency from the Kafka
	// timestamp to the poll loop handing the record to its partition's
	// queue (the broker, librdkafka's fetch and queue, the poll loop);
	// QueuedLatency from there until the worker takes it, which includes
	// waiting for the partition's batch in flight to commit.
	DispatchLatency prometheus.Histogram
	QueuedLatency   prometheus.Histogram
	// SourceLag is, per partition, the time from the source commit of the
	// newest change a batch applied (Debezium's source.ts_us, else ts_ms)
	// to that batch's commit in the target; TableSourceLag the same per
	// target table; SourceApplied that source commit time itself (Unix
	// seconds), from which time() - SourceApplied tells a stuck partition.
	// SourceLagRecords is SourceLag for every applied record.
	SourceLag        *prometheus.GaugeVec // topic, partition
	TableSourceLag   *prometheus.GaugeVec // table
	SourceApplied    *prometheus.GaugeVec // topic, partition
	SourceLagRecords prometheus.Histogram
	// SchemaChanges counts each difference between a source schema and
	// its target, once per table and column, and each change pgsink made.
	SchemaChanges *prometheus.CounterVec // table, change (sink.SchemaChangeKind)
	// BufferFull is the time the poll loop took no records because the
	// buffer budget was spent; Pauses counts partition pauses by reason.
	BufferFull prometheus.Counter
	Pauses     *prometheus.CounterVec // reason (queue_full|buffer_full|marker_budget)
	// SnapshotSwept counts the target rows deleted by snapshot
	// reconciliation: rows a completed snapshot did not read.
	SnapshotSwept *prometheus.CounterVec // table
	// SnapshotsUnswept counts completed snapshots of a table that takes
	// deletes that no sweep follows.
	SnapshotsUnswept *prometheus.CounterVec // table, reason (sink.SweepSkipReason)
	Tx               *TxMetrics
	registry         *prometheus.Registry
}

// NewMetrics registers the series in a fresh registry (with Go and process
// collectors), so tests can build several connectors in one process.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_records_consumed_total",
			Help: "Kafka records received for owned partitions."}, []string{"topic"}),
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_rows_applied_total",
			Help: "Rows sent to the target after per-batch reduction; the version guard may still skip stale ones."}, []string{"table", "op"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_dead_letters_total",
			Help: "Records written to the dead-letter queue instead of the target."}, []string{"topic", "destination"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_records_skipped_total",
			Help: "Records passed over, by reason: no_write (tombstones, transaction markers, messages), below_position (redelivered), not_owned, event_type (outbox type filter), duplicate (outbox event id already applied), stale (older than the target row: refused by the version guard or a tombstone)."}, []string{"topic", "reason"}),
		Unresolved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_unresolved_unchanged_rows_total",
			Help: "Rows written from an event with Debezium's unchanged-TOAST placeholder whose value was nowhere: no stored row, and for a primary-key change no old key's row (see docs/internals.md, Key moves): those columns hold NULL. Set REPLICA IDENTITY FULL on the source table."}, []string{"table"}),
		CompactedDeletes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_compacted_deletes_total",
			Help: "Kafka tombstones whose delete event log compaction removed: the delete was not applied, and a row the target held for that key may remain. pgsink verify --repair removes rows the source no longer has."}, []string{"topic"}),
		UndetectableMoves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_undetectable_key_moves_total",
			Help: "Updates of a table keyed on other columns than the source's primary key whose before image does not carry the key: a change of a key column would leave the old key's row in the target. Set REPLICA IDENTITY FULL on the source table."}, []string{"table"}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_fenced_batches_total",
			Help: "Batches rejected because another instance claimed the partition (a zombie write stopped)."}),
		TargetWentBack: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_target_went_back_total",
			Help: "Times a partition found its stored claim or position behind what this instance had committed: the target lost committed transactions (a failover to a standby that was behind, a restore from a backup). The partition reads again from what the target holds; readers of the target saw its rows go back meanwhile (docs/operations.md, Target failover)."}, []string{"topic"}),
		Rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_rebalances_total",
			Help: "Consumer group rebalance events."}, []string{"kind"}),
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_batch_records",
			Help: "Records per applied batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		ApplySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_apply_seconds",
			Help: "Duration of one batch apply, transaction included.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_partition_lag_records",
			Help: "High watermark minus the stored position, per owned partition."}, []string{"topic", "partition"}),
		Owned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_partitions_owned",
			Help: "Partitions this instance holds the epoch of."}),
		AwaitingClaim: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_partitions_awaiting_claim",
			Help: "Partitions assigned to this instance whose claim waits for the target PostgreSQL to be back: assigned paused, applied by nobody meanwhile."}),
		Buffered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_buffered_bytes",
			Help: "Bytes of the records fetched and not yet applied (queued, or in a batch): key and value, each record's message, envelope and queue slots, and the estimated decoded size of the records in a batch; bounded by apply.max_buffered_bytes."}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_apply_retries_total",
			Help: "Transient apply errors retried with backoff."}),
		UnavailableRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_apply_unavailable_retries_total",
			Help: "Attempts that found the target PostgreSQL unavailable (connection lost or refused, shutting down, recovering), counted as they happen: applies, the resolver's transactions, claims at a rebalance or after a replay, catalog reads while routing, idle partitions' checks of their rows. Each is retried until the target is back, apply.retry.max_attempts counting only conflicts."}),
		Pipelined: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_apply_pipelined_total",
			Help: "Transactions sent while another transaction of their partition was still in flight (apply.pipeline): how often pipelining engages."}),
		PipelineRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_apply_pipeline_retries_total",
			Help: "Pipelined transactions (apply.pipeline) whose offsets compare-and-set reached PostgreSQL before their predecessor's and found the position not yet there: applied again, alone, once the predecessor committed. Each costs a transaction; a steady rate means apply.pipeline gains little here."}),
		Panics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_panics_total",
			Help: "Panics recovered (a bug met on some input), by where: decode and apply isolate the record into the dead letters (or stop its partition under errors.tolerance none); worker stops the partition. The process and the other partitions go on. Any growth is worth a bug report with the stack from the dead letter or the log."}, []string{"where"}),
		InsertConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_insert_conflicts_total",
			Help: "Batches applied a second time with upserts only because a create or snapshot read, written by plain INSERT, met a key the target already held (Debezium re-emitting after a restart, a snapshot or replay over a populated table). The table then takes upserts for its next 64 batches. Steady growth means a stream of such events; harmless, but each costs a transaction."}, []string{"table"}),
		Splits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_apply_splits_total",
			Help: "Transactions the target refused for some record's data without naming the record (a value that cannot be encoded for its column in a COPY, a constraint), applied again in halves until the record stood alone: it then goes to the dead letters, or, if it applies alone (by bound parameters where the large batch used COPY), is written by another way than the one that refused it. Expected to stay 0; any growth is worth a look at the warning logged once per table."}, []string{"table"}),
		Stopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_partition_stopped",
			Help: "1 while a partition is stopped on an error that needs an operator."}, []string{"topic", "partition"}),
		SchemaWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_schema_registry_unavailable_total",
			Help: "Attempts to fetch a record's Avro schema that failed because the schema registry could not be reached or failed (encoding: avro). The record's partition waits with its offset unmoved and retries with backoff; records whose schema ids were fetched before keep flowing."}, []string{"topic"}),
		SchemaWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_partition_waiting_schema",
			Help: "1 while a partition waits for the schema registry to serve a record's schema (its offset unmoved)."}, []string{"topic", "partition"}),
		EndToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_end_to_end_seconds",
			Help: "From the Kafka append time of a batch's last record to its commit in the target.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		RecordLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_record_commit_latency_seconds",
			Help:    "From each applied record's Kafka timestamp (append time with LogAppendTime topics, else the producer's create time) to the commit of its transaction in the target.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.25, 56)}),
		ReceiveLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_record_receive_latency_seconds",
			Help:    "From each record's Kafka timestamp to the moment its partition worker takes it into a batch: Kafka's delivery, pgsink's fetch buffer, and the wait behind the partition's batch in flight (pgsink_record_dispatch_latency_seconds and pgsink_record_queued_seconds split it). The rest of pgsink_record_commit_latency_seconds is batching and the apply.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.25, 56)}),
		SourceLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_source_lag_seconds",
			Help: "Per owned partition, from the source commit time (Debezium's source.ts_us, else ts_ms) of the newest change the last batch applied to that batch's commit in the target: how far the target is behind the source. Set at each commit; while no batch commits it keeps its value (see pgsink_source_applied_timestamp_seconds)."}, []string{"topic", "partition"}),
		TableSourceLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_table_source_lag_seconds",
			Help: "pgsink_source_lag_seconds per target table: set by the last batch of any of this instance's partitions that applied changes to it; gone when such a partition is revoked, until another sets it again."}, []string{"table"}),
		SourceApplied: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_source_applied_timestamp_seconds",
			Help: "Per owned partition, the source commit time (Unix seconds) of the newest change applied: time() minus it grows while records wait and nothing commits."}, []string{"topic", "partition"}),
		SourceLagRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_record_source_lag_seconds",
			Help:    "From each applied record's source commit time to the commit of its transaction in the target.",
			Buckets: prometheus.ExponentialBuckets(0.001, 1.5, 40)}),
		DispatchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_record_dispatch_latency_seconds",
			Help:    "From each record's Kafka timestamp to the poll loop handing it to its partition's queue: the broker, librdkafka's fetch and queue, and the poll loop. The first part of pgsink_record_receive_latency_seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.25, 56)}),
		ConnectionWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_apply_connection_wait_seconds",
			Help:    "Per applied batch, how long its transactions waited for a connection of the pool (postgres.max_connections): part of pgsink_apply_seconds. Near the apply's own time when more partitions have a batch ready than there are connections; raise postgres.max_connections towards the number of partitions then.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.25, 56)}),
		QueuedLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_record_queued_seconds",
			Help:    "From the poll loop handing a record to its partition's queue to the worker taking it into a batch: mostly the wait for the partition's batch in flight to commit. The second part of pgsink_record_receive_latency_seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.25, 56)}),
		BufferFull: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_buffer_full_seconds_total",
			Help: "Seconds the poll loop took no records because apply.max_buffered_bytes was spent. While it grows as fast as the clock, the apply, not Kafka, sets the pace; a larger budget buys larger batches and a little throughput."}),
		Pauses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_partition_pauses_total",
			Help: "Partitions paused, by reason: queue_full (a partition's worker is behind), buffer_full (the budget stayed spent for half a second, so every partition is paused to keep serving the group), marker_budget (the transaction topic's markers hold an eighth of apply.max_buffered_bytes while the resolver waits). librdkafka drops a paused partition's prefetched records and fetches them again after the resume."}, []string{"reason"}),
		SchemaChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_schema_changes_total",
			Help: "Source schema differences seen (once per table and column: new_field, missing_field, likely_rename) and changes pgsink made to a target for them (add_column, drop_not_null)."}, []string{"table", "change"}),
		SnapshotSwept: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_snapshot_swept_rows_total",
			Help: "Target rows deleted (per the table's deletes mode) because a completed Debezium snapshot of their table did not read them: rows deleted in the source while no change stream reached pgsink (a lost slot, an interrupted snapshot, a populated target)."}, []string{"table"}),
		SnapshotsUnswept: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_snapshot_sweeps_skipped_total",
			Help: "Completed Debezium snapshots of a table (its last snapshot record applied) after which nothing is swept, by reason: reconcile_off (snapshot.reconcile: false, a table whose snapshots may be partial), kafka_offsets (apply.offsets: kafka). Rows deleted in the source while nothing streamed may remain in the target."}, []string{"table", "reason"}),
		registry: r,
	}
	r.MustRegister(m.Consumed, m.Applied, m.DeadLetters, m.Skipped, m.Fenced, m.TargetWentBack, m.Unresolved, m.UndetectableMoves, m.CompactedDeletes, m.Rebalances, m.BatchRecords,
		m.ApplySeconds, m.Lag, m.Owned, m.AwaitingClaim, m.Buffered, m.Retries, m.UnavailableRetries, m.Pipelined, m.PipelineRetries, m.Panics, m.InsertConflicts, m.Splits, m.Stopped, m.EndToEnd, m.RecordLatency, m.ReceiveLatency,
		m.BufferFull, m.Pauses, m.SnapshotSwept, m.SnapshotsUnswept)
	r.MustRegister(m.SchemaChanges, m.SchemaWaits, m.SchemaWaiting)
	r.MustRegister(m.DispatchLatency, m.QueuedLatency, m.ConnectionWait, m.SourceLag, m.TableSourceLag, m.SourceApplied, m.SourceLagRecords)
	m.Tx = newTxMetrics(r)
	return m
}

// Registry is what /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }
