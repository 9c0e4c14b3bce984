package connector

import "github.com/prometheus/client_golang/prometheus"

// TxMetrics are the series of apply.consistency: transaction
// (docs/transactions.md): what the partitions staged, where the resolver
// stands, and what it waits for. In partition mode they stay at zero.
type TxMetrics struct {
	Staged *prometheus.CounterVec // topic: records staged by this instance's partitions
	// Resolved counts the staged records the resolver wrote, Transactions
	// the source transactions it applied: staged minus resolved records,
	// summed over the group's instances, is what waits in pgsink.tx_staged.
	Resolved     prometheus.Counter
	Transactions prometheus.Counter
	Position     prometheus.Gauge // the transaction topic's offset the resolver stands at
	// Writing is the staged records the resolver's apply transaction in
	// progress has written so far (0 between transactions).
	Writing prometheus.Gauge
	// Waiting is, for the END the resolver waits at, its events staged so
	// far and those it counts (both 0 when it does not wait); WaitSeconds
	// how long it has waited (it stops past apply.transaction.max_wait).
	Waiting     *prometheus.GaugeVec // of (staged|expected)
	WaitSeconds prometheus.Gauge
	// WaitPublished is 1 while the resolver waits with its wait published
	// (pgsink.tx_resolver_waits), which lets every data partition stage
	// past its bound.
	WaitPublished prometheus.Gauge
	// CommitLatency is, per applied source transaction, the time from its
	// oldest staged record's Kafka timestamp to the resolver's commit.
	CommitLatency prometheus.Histogram
	stagingMetrics
	localMetrics
}

func newTxMetrics(r *prometheus.Registry) *TxMetrics {
	m := &TxMetrics{
		Staged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_transaction_staged_records_total",
			Help: "apply.consistency: transaction: records of source transactions staged in pgsink.tx_staged by this instance's partitions."}, []string{"topic"}),
		Resolved: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_transaction_resolved_records_total",
			Help: "Staged records the resolver wrote to the targets (and deleted from staging). Summed over the group's instances, staged minus resolved is what waits in pgsink.tx_staged."}),
		Transactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgsink_transactions_resolved_total",
			Help: "Source transactions the resolver applied whole."}),
		Position: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_transaction_resolver_position",
			Help: "The transaction topic's offset the resolver of this instance stands at: every END before it is applied."}),
		Writing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_transaction_resolver_writing_records",
			Help: "Staged records written so far by the resolver's apply transaction in progress (0 between transactions): a large source transaction is one long apply, and this shows it move."}),
		Waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_transaction_waiting_records",
			Help: "For the END the resolver waits at (its events not all staged yet): of=staged, the events staged so far; of=expected, the events END counts. Both 0 when it does not wait."}, []string{"of"}),
		WaitSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_transaction_waiting_seconds",
			Help: "How long the resolver has waited at an END for its events to be staged since the last of them was (0 when it does not wait); it stops once Debezium has written for apply.transaction.max_wait since without them."}),
		WaitPublished: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgsink_transaction_resolver_wait_published",
			Help: "1 while this instance's resolver waits at an END for events not all staged and has published the wait (pgsink.tx_resolver_waits): every data partition then stages past apply.transaction.max_staged_bytes until the resolver's next apply."}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pgsink_transaction_commit_latency_seconds",
			Help:    "Per applied source transaction, from the Kafka timestamp of its oldest staged record to the commit of the resolver's transaction that made it visible.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.25, 56)}),
		stagingMetrics: stagingMetrics{
			StagedAhead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_transaction_staged_ahead_bytes",
				Help: "Per data partition of this instance: the bytes of keys and values it staged that the resolver has not applied yet, as far as the partition knows (it reads the resolver's frontier once at apply.transaction.max_staged_bytes)."}, []string{"topic", "partition"}),
			StagingWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgsink_transaction_staging_waiting",
				Help: "1 while the data partition waits before staging more: its staged records the resolver has not applied reach apply.transaction.max_staged_bytes (its consumption pauses as its queue fills)."}, []string{"topic", "partition"}),
			StagingWaitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_transaction_staging_wait_seconds_total",
				Help: "Time data partitions of the topic waited at apply.transaction.max_staged_bytes for the resolver."}, []string{"topic"}),
			StagingRecounts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgsink_transaction_staging_recounts_total",
				Help: "Times a data partition at apply.transaction.max_staged_bytes counted again in the database what it staged ahead of the resolver, the frontier unmoved; account=short when a counted batch staged fewer records than it counted (re-emissions, a replay), exact otherwise. Each reads the group's staged rows."}, []string{"topic", "account"}),
		},
	}
	m.localMetrics = newLocalMetrics()
	r.MustRegister(m.Staged, m.Resolved, m.Transactions, m.Position, m.Writing, m.Waiting, m.WaitSeconds, m.WaitPublished, m.CommitLatency,
		m.StagedAhead, m.StagingWaiting, m.StagingWaitSeconds, m.StagingRecounts,
		m.Direct, m.DirectLeaves, m.heldRecords, m.heldBytes)
	return m
}
