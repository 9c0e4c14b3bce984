//go:build integration

package txapply_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/sink/pgcopy"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
	"github.com/pgsink/pgsink/txapply"
)

const (
	schema   = "pgsink"
	group    = "g"
	accounts = 8
	balance  = 100
	// transfers move money between two accounts each; orders insert an
	// order and its lines in a second table.
	transfers = 20
	orders    = 3
)

// bank is the source workload recorded from the real Debezium: accounts
// read by the snapshot, then transfers and orders streamed, each a source
// transaction, on topics of several partitions.
type bank struct {
	prefix  string
	records []recording.Record
}

func (b bank) topic(table string) string { return b.prefix + ".public." + table }
func (b bank) txTopic() string           { return b.prefix + ".transaction" }

// recordBank runs the workload on the stack and reads back every record:
// the snapshot of the accounts, then every END and every event.
func recordBank(t *testing.T) bank {
	st := stacktest.New(t)
	ctx := context.Background()
	st.Exec(`CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL);
		CREATE TABLE order_lines (order_id int, line int, amount bigint NOT NULL, PRIMARY KEY (order_id, line))`)
	st.Exec(fmt.Sprintf(`INSERT INTO accounts SELECT i, %d FROM generate_series(1, %d) i`, balance, accounts))
	b := bank{prefix: st.TopicPrefix}
	for table, partitions := range map[string]int{"accounts": 4, "orders": 2, "order_lines": 3} {
		if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, b.topic(table), partitions); err != nil {
			t.Fatal(err)
		}
	}
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, b.txTopic(), 1); err != nil {
		t.Fatal(err)
	}
	st.RegisterDebezium("bank", map[string]string{
		"provide.transaction.metadata": "true",
		"table.include.list":           "public.accounts,public.orders,public.order_lines",
	})
	// The snapshot first, so that the streamed transactions come after it.
	st.ReadUntil(2*time.Minute, func(rs []recording.Record) bool { return count(rs, b.topic("accounts")) == accounts })
	src := st.Source()
	rnd := rand.New(rand.NewPCG(1, 2))
	events := accounts
	for i := 0; i < transfers; i++ {
		from, to := 1+rnd.IntN(accounts), 1+rnd.IntN(accounts-1)
		if to >= from {
			to++
		}
		if _, err := src.Exec(ctx, `BEGIN; UPDATE accounts SET balance = balance - 7 WHERE id = $1; UPDATE accounts SET balance = balance + 7 WHERE id = $2; COMMIT`, from, to); err == nil {
			continue
		}
		// pgx runs a multi-statement string only without arguments.
		tx, err := src.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET balance = balance - 7 WHERE id = $1`, from); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET balance = balance + 7 WHERE id = $1`, to); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		events += 2
	}
	for o := 1; o <= orders; o++ {
		st.Exec(fmt.Sprintf(`BEGIN; INSERT INTO orders VALUES (%d, 'c%d');
			INSERT INTO order_lines SELECT %d, l, l * 10 FROM generate_series(1, %d) l; COMMIT`, o, o, o, o+1))
		events += 1 + o + 1
	}
	ends := transfers + orders
	b.records = st.ReadUntil(2*time.Minute, func(rs []recording.Record) bool {
		return countEnds(t, rs, b.txTopic()) == ends && len(rs)-count(rs, b.txTopic()) == events
	})
	return b
}

func count(rs []recording.Record, topic string) int {
	n := 0
	for _, r := range rs {
		if r.Topic == topic {
			n++
		}
	}
	return n
}

func countEnds(t *testing.T, rs []recording.Record, topic string) int {
	dec := debezium.NewDecoder(debezium.Options{})
	n := 0
	for _, r := range rs {
		if r.Topic != topic {
			continue
		}
		ch, err := dec.Decode(toRecord(r))
		if err != nil {
			t.Fatalf("transaction topic record %d does not decode: %v", r.Offset, err)
		}
		if ch.TxMark.Status == "END" {
			n++
		}
	}
	return n
}

func toRecord(r recording.Record) debezium.Record {
	rec := debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, debezium.Header{Key: h.Key, Value: h.Value})
	}
	return rec
}

// target is a migrated target database with the bank's tables.
type target struct {
	pool    *pgxpool.Pool
	router  *sink.Router
	stager  *sink.Applier
	writer  *sink.Applier
	offsets dedup.Offsets
}

func newTarget(t *testing.T, b bank, stage bool) *target {
	t.Helper()
	ctx := context.Background()
	url := stacktest.OwnedTargetDatabase(t)
	if err := dedup.NewMigrator(url, schema).Up(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pc.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		pgcopy.RegisterTypes(conn.TypeMap(), 2)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Qualified: the role's search_path starts with its own schema, pgsink.
	if _, err := pool.Exec(ctx, `CREATE TABLE public.accounts (id int PRIMARY KEY, balance bigint NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint);
		CREATE TABLE public.orders (id int PRIMARY KEY, customer text NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint);
		CREATE TABLE public.order_lines (order_id int, line int, amount bigint NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint, PRIMARY KEY (order_id, line))`); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`kafka: { bootstrap.servers: k, group.id: %s }
postgres: { url: u }
apply: { consistency: transaction, transaction: { topic: %s } }
tables:
  - topic: %s
    target: public.accounts
  - topic: %s
    target: public.orders
  - topic: %s
    target: public.order_lines
`, group, b.txTopic(), b.topic("accounts"), b.topic("orders"), b.topic("order_lines"))), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return &target{pool: pool, router: sink.NewRouter(cfg, pool),
		stager:  sink.NewApplier(pool, sink.Options{Schema: schema, StopOnError: true, StageTransactions: stage}),
		writer:  sink.NewApplier(pool, sink.Options{Schema: schema, StopOnError: true}),
		offsets: dedup.NewOffsets(schema)}
}

// applyPartition applies (or stages) every record of one data partition, in
// batches of size, as the connector would, calling between after each.
func (tg *target) applyPartition(t *testing.T, records []recording.Record, topic string, partition int32, size int, between func()) {
	t.Helper()
	ctx := context.Background()
	claim, err := tg.offsets.Claim(ctx, tg.pool, dedup.PartitionID{Group: group, Topic: topic, Partition: partition}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	dec := tg.router.NewDecoder()
	var batch []sink.Item
	flush := func(next int64) {
		if err := tg.apply(ctx, &claim, batch, next); err != nil {
			t.Fatalf("%s[%d]: %v", topic, partition, err)
		}
		batch = nil
		if between != nil {
			between()
		}
	}
	for _, r := range records {
		if r.Topic != topic || r.Partition != partition {
			continue
		}
		it, ok, err := tg.router.Item(ctx, dec, toRecord(r))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			batch = append(batch, it)
		}
		if len(batch) == size {
			flush(r.Offset + 1)
		}
	}
	if len(batch) > 0 {
		flush(batch[len(batch)-1].Record.Offset + 1)
	}
}

// stageAll stages every data partition of b in batches of size, and
// claims the transaction topic's partition for a resolver.
func (tg *target) stageAll(t *testing.T, b bank, size int) dedup.Claim {
	t.Helper()
	for _, p := range partitions(b) {
		tg.applyPartition(t, b.records, p.Topic, p.Partition, size, nil)
	}
	claim, err := tg.offsets.Claim(context.Background(), tg.pool, dedup.PartitionID{Group: group, Topic: b.txTopic(), Partition: 0}, 0, "resolver")
	if err != nil {
		t.Fatal(err)
	}
	return claim
}

func (tg *target) apply(ctx context.Context, claim *dedup.Claim, items []sink.Item, next int64) error {
	_, err := tg.stager.Apply(ctx, &sink.Batch{Claim: claim, Items: items, Next: next})
	return err
}

// ends are the END markers of the transaction topic, in its order.
func ends(t *testing.T, b bank) []txapply.End {
	dec := debezium.NewDecoder(debezium.Options{})
	var out []txapply.End
	for _, r := range b.records {
		if r.Topic != b.txTopic() {
			continue
		}
		ch, err := dec.Decode(toRecord(r))
		if err != nil {
			t.Fatal(err)
		}
		if ch.TxMark.Status == "END" {
			out = append(out, txapply.End{Offset: r.Offset, Marker: ch.TxMark, SourceTs: ch.EventTs})
		}
	}
	return out
}

// partitions lists the data partitions of the bank's records.
func partitions(b bank) []dedup.PartitionID {
	var out []dedup.PartitionID
	for _, r := range b.records {
		p := dedup.PartitionID{Group: group, Topic: r.Topic, Partition: r.Partition}
		if r.Topic != b.txTopic() && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// violation reads the target in one REPEATABLE READ snapshot and says what
// a reader sees that the source never committed: a total other than the
// constant, an order without all its lines. Accounts not applied yet (the
// snapshot's) count as empty: the check starts once they are all there.
func violation(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var n, total int64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(balance), 0) FROM public.accounts`).Scan(&n, &total); err != nil {
		t.Fatal(err)
	}
	if n == accounts && total != accounts*balance {
		return fmt.Sprintf("the accounts total %d, the source's is always %d", total, accounts*balance)
	}
	var order, lines int64
	err = tx.QueryRow(ctx, `SELECT o.id, (SELECT count(*) FROM public.order_lines l WHERE l.order_id = o.id) FROM public.orders o
		WHERE (SELECT count(*) FROM public.order_lines l WHERE l.order_id = o.id) <> o.id + 1 LIMIT 1`).Scan(&order, &lines)
	if err == nil {
		return fmt.Sprintf("order %d is visible with %d of its %d lines", order, lines, order+1)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM public.order_lines l WHERE NOT EXISTS (SELECT 1 FROM public.orders o WHERE o.id = l.order_id)`).Scan(&lines); err != nil {
		t.Fatal(err)
	}
	if lines > 0 {
		return fmt.Sprintf("%d order lines are visible without their order", lines)
	}
	return ""
}

func resolve(t *testing.T, r *txapply.Resolver, claim *dedup.Claim, es []txapply.End) txapply.Result {
	t.Helper()
	res, err := r.Resolve(context.Background(), claim, es, es[len(es)-1].Offset+1)
	if err != nil {
		t.Fatalf("Resolve at offset %d: %v", claim.NextOffset, err)
	}
	return res
}

// TestIntegrationTransactionConsistentApply stages the bank's partitions
// one after the other, in small batches, and resolves its transactions as
// their events arrive: a reader never sees a total other than the constant
// nor an order without its lines; an END whose events are not all staged
// waits, naming the collection; the resolver is fenced by the transaction
// topic's epoch; a replay of a data partition or of the transaction topic
// changes nothing. The same records applied per partition show the reader
// a violation: the checker can fail.
func TestIntegrationTransactionConsistentApply(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	ps := partitions(b)
	es := ends(t, b)

	t.Run("partition mode shows violations", func(t *testing.T) {
		tg := newTarget(t, b, false)
		var seen []string
		check := func() {
			if v := violation(t, tg.pool); v != "" {
				seen = append(seen, v)
			}
		}
		for _, p := range ps {
			tg.applyPartition(t, b.records, p.Topic, p.Partition, 1, check)
		}
		if len(seen) == 0 {
			t.Fatal("applying per partition showed the reader no violation: the checker cannot fail, or the workload does not cross partitions")
		}
		if v := violation(t, tg.pool); v != "" {
			t.Errorf("once every partition is applied the target still shows: %s", v)
		}
		t.Logf("per partition, the reader saw %d violations, the first: %s", len(seen), seen[0])
	})

	t.Run("transaction mode", func(t *testing.T) {
		tg := newTarget(t, b, true)
		resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 2})
		txPart := dedup.PartitionID{Group: group, Topic: b.txTopic(), Partition: 0}
		claim, err := tg.offsets.Claim(ctx, tg.pool, txPart, 0, "resolver")
		if err != nil {
			t.Fatal(err)
		}
		pending := es
		applied := 0
		midway := 0 // reader checks with some transactions applied and some not
		// Between every staged batch of every partition: resolve what is
		// complete, one END at a time or all at once, and look.
		step := func() {
			if v := violation(t, tg.pool); v != "" {
				t.Fatalf("after staging, before resolving: %s", v)
			}
			for len(pending) > 0 {
				take := 1
				if applied%2 == 1 {
					take = len(pending)
				}
				res, err := resolver.Resolve(ctx, &claim, pending[:take], pending[take-1].Offset+1)
				var inc *txapply.IncompleteError
				if errors.As(err, &inc) {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				applied += res.Applied
				pending = pending[res.Applied+res.Passed:]
				if v := violation(t, tg.pool); v != "" {
					t.Fatalf("after resolving %d transactions: %s", applied, v)
				}
				if applied < transfers+orders {
					midway++
				}
			}
		}
		var linesPart dedup.PartitionID
		for _, p := range ps {
			if p.Topic == b.topic("order_lines") {
				linesPart = p // staged last: the orders' ENDs wait for it
				continue
			}
			tg.applyPartition(t, b.records, p.Topic, p.Partition, 3, step)
		}
		if applied != transfers {
			t.Fatalf("with every partition but %s staged, %d transactions applied, want the %d transfers", linesPart, applied, transfers)
		}
		_, err = resolver.Resolve(ctx, &claim, pending, pending[len(pending)-1].Offset+1)
		var inc *txapply.IncompleteError
		if !errors.As(err, &inc) || !strings.Contains(err.Error(), "public.order_lines: 0 of") {
			t.Fatalf("an order's END with its lines not staged: Resolve = %v, want an IncompleteError naming public.order_lines", err)
		}
		var orderCount int
		if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM public.orders`).Scan(&orderCount); err != nil || orderCount != 0 {
			t.Fatalf("orders applied before their lines were staged: %d, %v", orderCount, err)
		}
		for _, p := range ps {
			if p.Topic == b.topic("order_lines") {
				tg.applyPartition(t, b.records, p.Topic, p.Partition, 3, step)
			}
		}
		if len(pending) != 0 {
			t.Fatalf("%d ENDs not applied once every partition is staged", len(pending))
		}
		if err := resolver.CheckEnds(ctx, group, 0); err != nil {
			t.Fatalf("with nothing staged, CheckEnds = %v", err)
		}
		if midway == 0 {
			t.Fatal("the reader never looked between two resolved transactions: the test proves nothing about what it sees")
		}
		var staged, resolvedN int
		if err := tg.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgsink.tx_staged), (SELECT count(*) FROM pgsink.tx_resolved)`).Scan(&staged, &resolvedN); err != nil {
			t.Fatal(err)
		}
		if staged != 0 || resolvedN != transfers+orders {
			t.Fatalf("after resolving: %d records still staged, %d transactions recorded; want 0 and %d", staged, resolvedN, transfers+orders)
		}
		// The frontier the stagers' bound reads: per data partition, its
		// last record of a source transaction.
		wantFrontier := map[dedup.PartitionID]int64{}
		dec := debezium.NewDecoder(debezium.Options{})
		for _, r := range b.records {
			if r.Topic == b.txTopic() {
				continue
			}
			if ch, err := dec.Decode(toRecord(r)); err == nil && ch.Transaction != nil {
				wantFrontier[dedup.PartitionID{Group: group, Topic: r.Topic, Partition: r.Partition}] = r.Offset
			}
		}
		for id, want := range wantFrontier {
			f, err := dedup.NewTransactions(schema).FrontierOf(ctx, tg.pool, group, id.Topic, id.Partition)
			if err != nil {
				t.Fatal(err)
			}
			if f.Applied != want || f.ResolverWaiting {
				t.Errorf("%s[%d]: the resolver published %+v, want its last transactional record %d and no wait", id.Topic, id.Partition, f, want)
			}
		}
		snapshot := func() string {
			var s string
			if err := tg.pool.QueryRow(ctx, `SELECT (SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM public.accounts) || '|' ||
				(SELECT string_agg(order_id || '/' || line || ':' || amount, ',' ORDER BY order_id, line) FROM public.order_lines)`).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		final := snapshot()

		// A zombie resolver: the transaction topic claimed again under a
		// new epoch, the old claim refused.
		stale := claim
		stale.NextOffset = 0
		newer, err := tg.offsets.Claim(ctx, tg.pool, txPart, 0, "other")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resolver.Resolve(ctx, &stale, es[:1], es[0].Offset+1); !errors.As(err, new(*dedup.FencedError)) {
			t.Fatalf("a resolver of a superseded epoch: Resolve = %v, want a FencedError", err)
		}
		// A replay of the transaction topic, under the new claim rewound to
		// its beginning: every END passed over, nothing applied again.
		if _, err := tg.pool.Exec(ctx, `UPDATE pgsink.offsets SET next_offset = 0 WHERE topic = $1`, b.txTopic()); err != nil {
			t.Fatal(err)
		}
		newer.NextOffset = 0
		res := resolve(t, resolver, &newer, es)
		if res.Applied != 0 || res.Passed != len(es) {
			t.Fatalf("replaying the transaction topic: %+v, want every END passed over", res)
		}
		// A replay of a data partition: its records are of resolved
		// transactions, and are not staged again.
		for _, p := range ps {
			if _, err := tg.pool.Exec(ctx, `UPDATE pgsink.offsets SET next_offset = 0 WHERE topic = $1 AND partition = $2`, p.Topic, p.Partition); err != nil {
				t.Fatal(err)
			}
			tg.applyPartition(t, b.records, p.Topic, p.Partition, 100, nil)
		}
		if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&staged); err != nil || staged != 0 {
			t.Fatalf("replaying the data partitions staged %d records again (%v); want none", staged, err)
		}
		if got := snapshot(); got != final {
			t.Fatalf("replays changed the target:\n%s\nwas\n%s", got, final)
		}
		if v := violation(t, tg.pool); v != "" {
			t.Fatal(v)
		}
	})
}

// TestIntegrationNoEnd: records of a transaction staged longer than
// max_wait ago, with no END read, stop the resolver with the transaction
// named; younger ones do not.
func TestIntegrationNoEnd(t *testing.T) {
	b := bank{prefix: "noend"}
	tg := newTarget(t, b, true)
	ctx := context.Background()
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema})
	batch := &pgx.Batch{}
	if _, err := dedup.NewTransactions(schema).QueueStage(batch, group, []dedup.StagedRecord{{TxID: 42, TotalOrder: 1, DataCollection: "public.accounts", Topic: b.topic("accounts")}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tg.pool.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatal(err)
	}
	if err := resolver.CheckEnds(ctx, group, time.Hour); err != nil {
		t.Fatalf("a transaction staged just now, max_wait 1h: CheckEnds = %v", err)
	}
	if _, err := tg.pool.Exec(ctx, `UPDATE pgsink.tx_staged SET staged_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	err := resolver.CheckEnds(ctx, group, time.Hour)
	var noEnd *txapply.NoEndError
	if !errors.As(err, &noEnd) || noEnd.TxID != 42 || noEnd.Records != 1 {
		t.Fatalf("a transaction staged 2h ago, max_wait 1h: CheckEnds = %v, want a NoEndError for transaction 42", err)
	}
}

// TestIntegrationResolverKeepsTheOrderBetweenTables resolves the bank's
// transactions, several to a chunk, into a target whose order lines
// reference their order by a foreign key checked at once (not deferred):
// the kind of constraint transaction mode is for. A chunk may group a
// table's records by partition, but an order must still be written before
// its lines, as the source wrote it, whatever the topics' names (the
// lines' sorts first).
func TestIntegrationResolverKeepsTheOrderBetweenTables(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	if _, err := tg.pool.Exec(ctx, `ALTER TABLE public.order_lines ADD FOREIGN KEY (order_id) REFERENCES public.orders (id)`); err != nil {
		t.Fatal(err)
	}
	claim := tg.stageAll(t, b, 100)
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	res := resolve(t, resolver, &claim, ends(t, b))
	if res.Applied != transfers+orders {
		t.Errorf("applied %d transactions, want %d", res.Applied, transfers+orders)
	}
	var n int
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM public.orders`).Scan(&n); err != nil || n != orders {
		t.Errorf("%d orders in the target (%v), want %d", n, err, orders)
	}
}

// TestIntegrationResolverPassesARepeatedEnd resolves the bank's ENDs with
// one of them repeated further on, as Debezium re-emits after a Connect
// restart, in one call: the repeat is passed over, not applied a second
// time in the same target transaction (whose tx_resolved row would fail
// on the first's and roll every transaction of the call back).
func TestIntegrationResolverPassesARepeatedEnd(t *testing.T) {
	b := recordBank(t)
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	es := ends(t, b)
	again := es[1]
	again.Offset = es[len(es)-1].Offset + 1
	es = append(es, again)
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	res := resolve(t, resolver, &claim, es)
	if res.Applied != transfers+orders || res.Passed != 1 {
		t.Errorf("applied %d and passed %d transactions, want %d and 1 (the repeated END)", res.Applied, res.Passed, transfers+orders)
	}
	if v := violation(t, tg.pool); v != "" {
		t.Errorf("after resolving every transaction: %s", v)
	}
}

// TestIntegrationResolverRetriesAConflictingInsert: the resolver writes the
// rows its transactions create by plain INSERT, as a batch does; when one
// meets a key the target holds already (a row written outside pgsink
// here), the resolve runs again with upserts only, and every transaction
// is applied once, the source's row replacing the stale one.
func TestIntegrationResolverRetriesAConflictingInsert(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	if _, err := tg.pool.Exec(ctx, `INSERT INTO public.orders (id, customer) VALUES (2, 'stale')`); err != nil {
		t.Fatal(err)
	}
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	res := resolve(t, resolver, &claim, ends(t, b))
	if res.Applied != transfers+orders || res.Stats.InsertConflicts != 1 {
		t.Errorf("applied %d transactions with %d insert conflicts, want %d and 1", res.Applied, res.Stats.InsertConflicts, transfers+orders)
	}
	var n int
	var customer string
	if err := tg.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.orders), (SELECT customer FROM public.orders WHERE id = 2)`).Scan(&n, &customer); err != nil || n != orders || customer != "c2" {
		t.Errorf("%d orders in the target, order 2's customer %q (%v); want %d and c2", n, customer, err, orders)
	}
	if v := violation(t, tg.pool); v != "" {
		t.Errorf("after resolving every transaction: %s", v)
	}
}

// TestIntegrationResolverReadsAcrossTransactionsByBytes resolves every END
// at once with a chunk of many records but few bytes: the resolver reads
// the small transactions together, its reads are cut within a transaction
// by apply.batch.max_bytes and go on from there, and every transaction is
// applied whole, once, nothing left staged.
func TestIntegrationResolverReadsAcrossTransactionsByBytes(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000, ChunkBytes: 3000})
	res := resolve(t, resolver, &claim, ends(t, b))
	if res.Applied != transfers+orders {
		t.Errorf("applied %d transactions, want %d", res.Applied, transfers+orders)
	}
	if v := violation(t, tg.pool); v != "" {
		t.Errorf("after resolving every transaction: %s", v)
	}
	var n, staged int
	if err := tg.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.orders), (SELECT count(*) FROM pgsink.tx_staged)`).Scan(&n, &staged); err != nil || n != orders || staged != 0 {
		t.Errorf("%d orders in the target, %d records left staged (%v); want %d and none", n, staged, err, orders)
	}
}

// TestIntegrationStagingTakesARestagedRecordOnce: a partition stages its
// records by plain INSERT; when Debezium re-emits some at new offsets (a
// Connect restart) the batch meets records staged already (by COPY, and
// by INSERT for a small batch), runs again deduplicating, and each is
// staged once: the resolver applies every
// transaction whole, once, nothing left staged.
func TestIntegrationStagingTakesARestagedRecordOnce(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	var staged int
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&staged); err != nil {
		t.Fatal(err)
	}
	// The partition with the most records.
	p, most := partitions(b)[0], 0
	for _, q := range partitions(b) {
		n := 0
		for _, r := range b.records {
			if r.Topic == q.Topic && r.Partition == q.Partition {
				n++
			}
		}
		if n > most {
			p, most = q, n
		}
	}
	part, err := tg.offsets.Claim(ctx, tg.pool, p, 0, "again")
	if err != nil {
		t.Fatal(err)
	}
	dec := tg.router.NewDecoder()
	var again []sink.Item
	for _, r := range b.records {
		if r.Topic != p.Topic || r.Partition != p.Partition {
			continue
		}
		rec := toRecord(r)
		rec.Offset = part.NextOffset + int64(len(again)) // re-emitted after the partition's end
		it, ok, err := tg.router.Item(ctx, dec, rec)
		if err != nil {
			t.Fatal(err)
		}
		if ok && it.Change.Transaction != nil {
			again = append(again, it)
		}
	}
	if len(again) < 10 {
		t.Fatalf("%d records of source transactions in %s[%d], want 10 or more", len(again), p.Topic, p.Partition)
	}
	// A batch of them re-emitted several times over is staged by COPY
	// (64 records or more), one of 10 by INSERT (a new stager: the first
	// conflict pauses the plain statements).
	var many []sink.Item
	for len(many) < 64 {
		for _, it := range again {
			it.Record.Offset += int64(len(many))
			many = append(many, it)
		}
	}
	small := make([]sink.Item, 10)
	for i := range small {
		small[i] = again[i]
		small[i].Record.Offset += int64(2 * len(many))
	}
	again = many
	stagers := []*sink.Applier{tg.stager, sink.NewApplier(tg.pool, sink.Options{Schema: schema, StopOnError: true, StageTransactions: true})}
	for i, batch := range [][]sink.Item{again, small} {
		st, err := stagers[i].Apply(ctx, &sink.Batch{Claim: &part, Items: batch, Next: batch[len(batch)-1].Record.Offset + 1})
		if err != nil {
			t.Fatal(err)
		}
		var after int
		if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if st.InsertConflicts != 1 || st.RestagedConflicts != 1 || after != staged {
			t.Errorf("re-staging %d records: %d insert conflicts (%d of staging), %d records staged, want 1 (of staging) and %d (as before)",
				len(batch), st.InsertConflicts, st.RestagedConflicts, after, staged)
		}
		if !st.StagedShort {
			t.Errorf("re-staging %d records staged none of them, counted %d bytes, and did not set Stats.StagedShort: the staging bound would take them for staged", len(batch), st.StagedBytes)
		}
	}
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	res := resolve(t, resolver, &claim, ends(t, b))
	if res.Applied != transfers+orders {
		t.Errorf("applied %d transactions, want %d", res.Applied, transfers+orders)
	}
	if v := violation(t, tg.pool); v != "" {
		t.Errorf("after resolving every transaction: %s", v)
	}
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&staged); err != nil || staged != 0 {
		t.Errorf("%d records left staged (%v), want none", staged, err)
	}
}

// TestIntegrationResolverRefusesAnEarlierXIDsRecord: staged records are
// keyed by xid, which comes round; a record left staged by an earlier
// transaction of the same xid (applied, recorded at a lower commit
// position) sits in the place of one of the later transaction's. The
// resolver recognises it by its LSN, below that earlier commit, and stops
// at the later transaction, applying nothing of it, instead of applying
// the leftover in its own record's stead. Without the check the resolve
// applied it.
func TestIntegrationResolverRefusesAnEarlierXIDsRecord(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	es := ends(t, b)
	victim := es[len(es)-1].Marker
	// An earlier transaction of the victim's xid, applied and committed
	// just below the victim's commit: every staged record of the xid
	// reads as its leftover.
	if _, err := tg.pool.Exec(ctx, `INSERT INTO pgsink.tx_resolved (group_id, tx_id, commit_lsn, event_count) VALUES ($1, $2, $3, 1)`,
		group, victim.TxID, victim.CommitLSN-1); err != nil {
		t.Fatal(err)
	}
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	res, err := resolver.Resolve(ctx, &claim, es[len(es)-1:], es[len(es)-1].Offset+1)
	if err == nil || !strings.Contains(err.Error(), "earlier transaction with the same xid") {
		t.Fatalf("Resolve of %s with a record of an earlier transaction of its xid staged = %+v, %v; want refused", victim.ID, res, err)
	}
	var resolved int
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_resolved WHERE tx_id = $1 AND commit_lsn = $2`, victim.TxID, victim.CommitLSN).Scan(&resolved); err != nil || resolved != 0 {
		t.Fatalf("%s recorded applied %d times (%v), want none", victim.ID, resolved, err)
	}
}

// TestIntegrationStaged: what `pgsink status` says of the END the resolver
// waits at: before its events are staged, an *IncompleteError naming each
// collection short of its count; once they are, nothing to wait for; once
// applied, applied.
func TestIntegrationStaged(t *testing.T) {
	ctx := context.Background()
	b := recordBank(t)
	tg := newTarget(t, b, true)
	es := ends(t, b)
	first := es[0]
	applied, err := txapply.Staged(ctx, tg.pool, schema, group, first)
	var incomplete *txapply.IncompleteError
	if applied || !errors.As(err, &incomplete) || incomplete.StagedTotal != 0 || incomplete.WantTotal != first.Marker.EventCount {
		t.Fatalf("Staged before staging = %v, %v; want an IncompleteError of 0 of %d events", applied, err, first.Marker.EventCount)
	}
	claim := tg.stageAll(t, b, 100)
	if applied, err := txapply.Staged(ctx, tg.pool, schema, group, first); applied || err != nil {
		t.Fatalf("Staged with every event staged = %v, %v; want not applied, nothing to wait for", applied, err)
	}
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	resolve(t, resolver, &claim, es[:1])
	if applied, err := txapply.Staged(ctx, tg.pool, schema, group, first); !applied || err != nil {
		t.Fatalf("Staged once applied = %v, %v; want applied", applied, err)
	}
}

// TestIntegrationResolverVerifiesWhatItReads: the resolver checks the
// staged counts in one transaction and reads and applies the records in
// another; a staged record that vanishes in between (an UNLOGGED tx_staged
// emptied by a crash of the target, a row deleted by hand) must make the
// apply roll back and wait, not apply the transaction without it and
// record it resolved. The test holds the resolver's offsets row so that
// its apply transaction waits right after the check, deletes a staged line
// of the last order meanwhile, then lets it go. Without the verification
// the resolve succeeds and the order is visible without that line.
func TestIntegrationResolverVerifiesWhatItReads(t *testing.T) {
	b := recordBank(t)
	ctx := context.Background()
	tg := newTarget(t, b, true)
	claim := tg.stageAll(t, b, 100)
	es := ends(t, b)
	last := es[len(es)-1].Marker
	hold, err := tg.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, `SELECT 1 FROM pgsink.offsets WHERE group_id = $1 AND topic = $2 AND partition = 0 FOR UPDATE`, group, b.txTopic()); err != nil {
		t.Fatal(err)
	}
	resolver := txapply.New(tg.pool, tg.writer, tg.router, txapply.Options{Schema: schema, Chunk: 1000})
	type outcome struct {
		res txapply.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := resolver.Resolve(ctx, &claim, es, es[len(es)-1].Offset+1)
		done <- outcome{res, err}
	}()
	// The counts are checked before the apply transaction's first
	// statement, the offsets compare-and-set, which now waits for hold.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting bool
		if err := tg.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%offsets%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the resolver's apply transaction never waited for the held offsets row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tag, err := hold.Exec(ctx, `DELETE FROM pgsink.tx_staged WHERE ctid = (SELECT ctid FROM pgsink.tx_staged
		WHERE group_id = $1 AND tx_id = $2 AND data_collection LIKE '%order_lines' LIMIT 1)`, group, last.TxID)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("deleting a staged line of transaction %s: %v (%d rows)", last.ID, err, tag.RowsAffected())
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	out := <-done
	var incomplete *txapply.IncompleteError
	if !errors.As(out.err, &incomplete) || incomplete.ID != last.ID {
		t.Fatalf("Resolve after a staged record of %s vanished: applied %d, err %v; want an *IncompleteError naming it", last.ID, out.res.Applied, out.err)
	}
	var resolved int
	if err := tg.pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_resolved WHERE group_id = $1`, group).Scan(&resolved); err != nil {
		t.Fatal(err)
	}
	if resolved != 0 || claim.NextOffset != 0 {
		t.Errorf("%d transactions recorded resolved and the resolver's position at %d; want none and 0 (the apply rolled back)", resolved, claim.NextOffset)
	}
	if v := violation(t, tg.pool); v != "" {
		t.Errorf("after the refused apply: %s", v)
	}
}
