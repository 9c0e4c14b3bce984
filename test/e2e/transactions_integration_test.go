//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// The bank workload of apply.consistency: transaction (docs/transactions.md):
// accounts with a constant total, transfers between two accounts (keys on
// different partitions) and orders with their lines in a second table, each
// a source transaction.
const (
	bankAccounts  = 16
	bankBalance   = 1000
	bankTransfers = 300
	bankOrders    = 40
)

const bankDDL = `CREATE TABLE public.accounts (id int PRIMARY KEY, balance bigint NOT NULL%[1]s);
CREATE TABLE public.orders (id int PRIMARY KEY, customer text NOT NULL%[1]s);
CREATE TABLE public.order_lines (order_id int, line int, amount bigint NOT NULL%[1]s, PRIMARY KEY (order_id, line))`

// bank is the bank workload's shape in the target (stacktest.BankReader).
var bank = stacktest.Bank{Accounts: "public.accounts", Orders: "public.orders", Lines: "public.order_lines", N: bankAccounts, Balance: bankBalance}

// bankPipeline is the bank's source and target: the source tables, their
// topics created with the given partitions (by table; the transaction
// topic with one), a Debezium connector with transaction metadata and
// the given overrides, and a target database with the tables.
type bankPipeline struct {
	st        *stacktest.T
	txTopic   string
	targetURL string
	target    *pgx.Conn
}

func newBankPipeline(t *testing.T, partitions map[string]int, connector map[string]string, seed ...string) *bankPipeline {
	t.Helper()
	st := stacktest.New(t)
	st.Exec(fmt.Sprintf(bankDDL, ""))
	for _, sql := range seed {
		st.Exec(sql) // before the connector: read by its snapshot
	}
	b := &bankPipeline{st: st, txTopic: st.TopicPrefix + ".transaction"}
	topics := map[string]int{b.txTopic: 1}
	for table, n := range partitions {
		topics[b.topic(table)] = n
	}
	for name, n := range topics {
		if err := stacktest.CreateTopic(context.Background(), st.Env.KafkaBootstrap, name, n); err != nil {
			t.Fatal(err)
		}
	}
	overrides := map[string]string{"provide.transaction.metadata": "true"}
	for k, v := range connector {
		overrides[k] = v
	}
	st.RegisterDebezium("bank", overrides)
	b.targetURL, b.target = targetWith(t, fmt.Sprintf(bankDDL, ", _pgsink_commit_lsn bigint, _pgsink_lsn bigint"))
	return b
}

func (b *bankPipeline) topic(table string) string { return b.st.TopicPrefix + ".public." + table }

// runBank streams the bank workload through `pgsink run` in the given
// apply.consistency and returns what the reader saw. With avro, Debezium
// writes every topic, the transaction topic too, through Apicurio's Avro
// converter in the Confluent wire format, and pgsink reads them with
// encoding: avro from the stack's registry.
func runBank(t *testing.T, consistency string, avro, local bool) (snapshots int, violations []string) {
	ctx := context.Background()
	connector := map[string]string{"table.include.list": "public.accounts,public.orders,public.order_lines"}
	var registry string
	if avro {
		env, err := stacktest.LoadEnv()
		if err == nil {
			registry, err = env.Registry()
		}
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(connector, stacktest.AvroConverter(registry))
	}
	b := newBankPipeline(t, map[string]int{"accounts": 4, "orders": 2, "order_lines": 3}, connector,
		fmt.Sprintf(`INSERT INTO public.accounts SELECT i, %d FROM generate_series(1, %d) i`, bankBalance, bankAccounts))
	st, topic, txTopic, targetURL := b.st, b.topic, b.txTopic, b.targetURL
	cfg := strings.Replace(tablesConfig(st, fmt.Sprintf("  - topic: %s\n    target: public.accounts\n  - topic: %s\n    target: public.orders\n  - topic: %s\n    target: public.order_lines\n",
		topic("accounts"), topic("orders"), topic("order_lines"))), "kafka:\n", "kafka:\n  session.timeout.ms: 6000\n", 1) +
		fmt.Sprintf("apply:\n  consistency: %s\n  batch: { max_records: 50 }\n  transaction: { topic: %s, max_wait: 2m, max_staged_bytes: 4KiB }\n", consistency, txTopic)
	if avro {
		cfg += fmt.Sprintf("encoding: avro\nschema_registry:\n  url: %s\n", stacktest.ConfluentAPI(registry))
	}
	if local {
		cfg = strings.Replace(cfg, "max_staged_bytes: 4KiB }", "max_staged_bytes: 4KiB, direct_local_partitions: true }", 1)
	}
	reader := stacktest.StartBankReader(t, targetURL, bank, 2*time.Millisecond)
	first := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	var second *process
	var secondPort int

	src := st.Source()
	rnd := rand.New(rand.NewPCG(7, 11))
	order := 0
	for i := 0; i < bankTransfers; i++ {
		from, to := 1+rnd.IntN(bankAccounts), 1+rnd.IntN(bankAccounts-1)
		if to >= from {
			to++
		}
		switch i {
		case bankTransfers / 3:
			// A second instance joins: the group rebalances, partitions
			// (maybe the transaction topic's) move while data streams.
			secondPort = freePort(t)
			second = startPgsink(t, strings.Replace(cfg, "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", secondPort), 1), "TARGET_URL="+targetURL)
		case 2 * bankTransfers / 3:
			// The first is killed with its batches and resolver in flight.
			_ = first.cmd.Process.Kill()
			<-first.done
		}
		amount := 1 + rnd.IntN(50)
		tx, err := src.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE public.accounts SET balance = balance - $2 WHERE id = $1`, from, amount); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE public.accounts SET balance = balance + $2 WHERE id = $1`, to, amount); err != nil {
			t.Fatal(err)
		}
		if i%(bankTransfers/bankOrders) == 0 && order < bankOrders {
			order++
			if _, err := tx.Exec(ctx, `INSERT INTO public.orders VALUES ($1::int, 'customer ' || $1::int)`, order); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO public.order_lines SELECT $1::int, l, l * 10 FROM generate_series(1, $2::int) l`, order, stacktest.OrderLines(order)); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	query := `SELECT (SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM public.accounts) AS a,
		(SELECT count(*) FROM public.orders) AS o, (SELECT count(*) FROM public.order_lines) AS l`
	convergeTo(t, st, targetURL, query, "the target's accounts, orders and lines equal the source's")
	if consistency == "transaction" {
		// A replay of the accounts from the beginning, while the reader
		// reads: records of resolved transactions are not staged again,
		// snapshot records are refused by the version guard.
		cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		replay := exec.Command(binary, "replay", "--config", cfgPath, "--table", "public.accounts", "--from", "earliest", "--wait", "--wait-timeout", "120s")
		replay.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		if out, err := replay.CombinedOutput(); err != nil {
			t.Fatalf("replay: %v\n%s", err, out)
		}
		convergeTo(t, st, targetURL, query, "the target equals the source after the replay")
		// Every streamed change went through staging and the resolver.
		var staged, resolved int
		if err := reader.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgsink.tx_staged), (SELECT count(*) FROM pgsink.tx_resolved)`).Scan(&staged, &resolved); err != nil {
			t.Fatal(err)
		}
		if staged != 0 || resolved != bankTransfers {
			t.Errorf("%d records left staged and %d source transactions resolved; want none and %d", staged, resolved, bankTransfers)
		}
	}
	if avro {
		// The run read Avro, markers included: every record of the
		// transaction topic and of the tables' topics is in the Confluent
		// wire format.
		records := st.ReadUntil(60*time.Second, func(rs []recording.Record) bool {
			markers := 0
			for _, r := range rs {
				if r.Topic == txTopic {
					markers++
				}
			}
			// A BEGIN and an END per transfer, and its two updates.
			return markers >= 2*bankTransfers && len(rs)-markers >= 2*bankTransfers
		})
		markers := 0
		for _, r := range records {
			if r.Topic == txTopic {
				markers++
			}
			if r.Value != nil && (len(r.Value) < 5 || r.Value[0] != 0) {
				t.Fatalf("%s[%d]@%d is not in the Confluent wire format: %q", r.Topic, r.Partition, r.Offset, r.Value)
			}
		}
		t.Logf("%d records read back, %d of them BEGIN and END markers, all in the Confluent wire format", len(records), markers)
	}
	if local && !strings.Contains(first.Logs()+second.Logs(), "partition takes the local path") {
		t.Error("no partition took the local path: the test did not exercise it")
	}
	if local {
		checkDirectMetrics(t, second, secondPort, 4+2+3)
	}
	if code, _ := second.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
	return reader.Finish()
}

// TestE2ETransactionConsistency: with apply.consistency: transaction a
// reader polling the target in REPEATABLE READ never sees a total other than
// the constant nor an order without its lines while the bank workload
// streams through `pgsink run`, through a second instance joining (a
// rebalance), the first killed with -9 and a replay of the accounts from
// the beginning; every record applied once.
func TestE2ETransactionConsistency(t *testing.T) {
	checkBank(t, "transaction", false, false)
}

// TestE2ETransactionConsistencyLocal is TestE2ETransactionConsistency with
// apply.transaction.direct_local_partitions: the partitions of the
// resolver's instance hand it their records unstaged, through the same
// rebalance, kill -9 and replay.
func TestE2ETransactionConsistencyLocal(t *testing.T) {
	checkBank(t, "transaction", false, true)
}

// TestE2ETransactionConsistencyAvro is TestE2ETransactionConsistency with
// Debezium on Apicurio's Avro converter (provide.transaction.metadata=true,
// so the transaction topic's BEGIN and END markers are Avro too) and pgsink
// on encoding: avro: the resolver reads the markers through the registry.
func TestE2ETransactionConsistencyAvro(t *testing.T) {
	checkBank(t, "transaction", true, false)
}

// checkBank runs the bank workload and fails on any violation the reader
// saw, or when it saw nothing.
func checkBank(t *testing.T, consistency string, avro, local bool) {
	snapshots, violations := runBank(t, consistency, avro, local)
	if len(violations) > 0 {
		t.Fatalf("the reader saw %d violations in %d snapshots, the first: %s", len(violations), snapshots, violations[0])
	}
	if snapshots == 0 {
		t.Fatal("the reader never saw every account: it checked nothing")
	}
	t.Logf("%d snapshots with every account, none broken", snapshots)
}

// TestE2EPartitionConsistencySelfTest: the same workload per partition
// shows the reader half-applied transactions, so the checker can fail.
func TestE2EPartitionConsistencySelfTest(t *testing.T) {
	snapshots, violations := runBank(t, "partition", false, false)
	if len(violations) == 0 {
		t.Fatalf("per partition, the reader saw no violation in %d snapshots: the checker cannot fail, or the workload does not cross partitions", snapshots)
	}
	t.Logf("per partition, %d violations in %d snapshots, the first: %s", len(violations), snapshots, violations[0])
}

// TestE2ETransactionIncomplete: a source transaction that also writes a
// table pgsink is not configured for never has all its events staged: the
// resolver waits apply.transaction.max_wait, then stops with the reason in
// `pgsink status`, and neither that transaction nor any later one is
// applied (nothing out of order), while the earlier one is.
func TestE2ETransactionIncomplete(t *testing.T) {
	ctx := context.Background()
	b := newBankPipeline(t, map[string]int{"accounts": 2, "orders": 1}, map[string]string{"table.include.list": "public.accounts,public.orders"})
	st, topic, txTopic, targetURL, target := b.st, b.topic, b.txTopic, b.targetURL, b.target
	cfg := tableConfig(st, topic("accounts"), "public.accounts", "") +
		fmt.Sprintf("apply:\n  consistency: transaction\n  transaction: { topic: %s, max_wait: 2s }\n", txTopic)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	st.Exec(`INSERT INTO public.accounts VALUES (1, 100), (2, 100)`)
	st.Exec(`BEGIN; UPDATE public.accounts SET balance = 90 WHERE id = 1; INSERT INTO public.orders VALUES (1, 'not configured'); COMMIT`)
	st.Exec(`UPDATE public.accounts SET balance = 110 WHERE id = 2`)
	// The resolver stops only once Debezium goes on writing (a source
	// that writes nothing, or a Connect outage, is waited through): the
	// source keeps committing transactions of the table not configured.
	writing, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	source, err := pgx.Connect(ctx, st.SourceURL)
	if err != nil {
		t.Fatal(err)
	}
	written := make(chan struct{})
	defer func() { stopWriting(); <-written; source.Close(ctx) }()
	go func() {
		defer close(written)
		for id := 100; writing.Err() == nil; id++ {
			if _, err := source.Exec(writing, `INSERT INTO public.orders VALUES ($1, 'not configured')`, id); err != nil && writing.Err() == nil {
				t.Errorf("source: %v", err)
				return
			}
			select {
			case <-writing.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	stopped := resolverStopped(t, cfg, targetURL, txTopic)
	stopWriting()
	<-written
	if !strings.Contains(stopped, "apply.transaction.max_wait") || !strings.Contains(stopped, "public.orders: 0 of 1") {
		t.Fatalf("stop reason %q does not say the resolver waited for public.orders", stopped)
	}
	var balances string
	if err := target.QueryRow(ctx, `SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM public.accounts`).Scan(&balances); err != nil {
		t.Fatal(err)
	}
	if balances != "1:100,2:100" {
		t.Fatalf("accounts %s: want the first transaction applied and neither the incomplete one nor the one after it (1:100,2:100)", balances)
	}
	// status does not count what waits in staging as applied: the two
	// staged account updates show on their partitions, which are then
	// not caught up, whatever their lag.
	var staged int64
	for _, part := range statusPartitions(t, cfg, targetURL) {
		if part.Topic != topic("accounts") {
			continue
		}
		staged += part.Staged
		if part.Staged > 0 && (part.CaughtUp || part.BehindSource == nil || *part.BehindSource <= 0) {
			t.Errorf("partition %d has %d staged records but status says caught_up %v, %v s behind source",
				part.Partition, part.Staged, part.CaughtUp, part.BehindSource)
		}
	}
	if staged != 2 {
		t.Errorf("status shows %d staged records on the accounts topic, want 2 (the incomplete transaction's and the one after it)", staged)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

// resolverStopped waits until pgsink status shows the transaction topic's
// partition stopped, and returns the reason.
func resolverStopped(t *testing.T, cfg, targetURL, txTopic string) string {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stopped string
	eventually(t, 90*time.Second, "the transaction topic's partition stopped in pgsink status", func() (bool, string) {
		cmd := exec.Command(binary, "status", "--config", cfgPath, "--json")
		cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
		out, err := cmd.Output()
		if err != nil {
			return false, err.Error()
		}
		var report struct {
			Partitions []struct {
				Topic   string `json:"topic"`
				Stopped string `json:"stopped"`
			} `json:"partitions"`
		}
		if err := json.Unmarshal(out, &report); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		for _, part := range report.Partitions {
			if part.Topic == txTopic && part.Stopped != "" {
				stopped = part.Stopped
				return true, ""
			}
		}
		return false, string(out)
	})
	return stopped
}

// TestE2ETransactionWithoutEnd: data of source transactions whose END
// never reaches the configured transaction topic (the connector writes its
// markers to another one) is staged, never applied, and once it waited
// apply.transaction.max_wait, and Debezium went on writing (the resolver
// waits through a Kafka Connect outage, after which Debezium writes a lost
// END again), the idle resolver stops naming the transaction in pgsink
// status.
func TestE2ETransactionWithoutEnd(t *testing.T) {
	waitsInParallel(t)
	t.Run("data first", func(t *testing.T) { transactionWithoutEnd(t, "") })
	// An application that emits a logical decoding message at the start
	// of every transaction (audit metadata): the message takes the
	// transaction's total_order 1 and pgsink does not stage it, so the
	// first staged record is at total_order 2. Before the idle check
	// found a transaction by its first staged record, whatever its
	// total_order, it found none of these and the resolver waited.
	t.Run("message first", func(t *testing.T) {
		transactionWithoutEnd(t, `SELECT pg_logical_emit_message(true, 'audit', 'user=alice')`)
	})
}

// transactionWithoutEnd runs TestE2ETransactionWithoutEnd's scenario, each
// source transaction starting with first when it is not empty.
func transactionWithoutEnd(t *testing.T, first string) {
	ctx := context.Background()
	b := newBankPipeline(t, map[string]int{"accounts": 2}, map[string]string{"topic.transaction": "elsewhere", "table.include.list": "public.accounts"})
	st, txTopic, targetURL, target := b.st, b.txTopic, b.targetURL, b.target
	cfg := tableConfig(st, b.topic("accounts"), "public.accounts", "") +
		fmt.Sprintf("apply:\n  consistency: transaction\n  transaction: { topic: %s, max_wait: 2s }\n", txTopic)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	insert := func(values string) string {
		if first == "" {
			return "INSERT INTO public.accounts VALUES " + values
		}
		return "BEGIN; " + first + "; INSERT INTO public.accounts VALUES " + values + "; COMMIT"
	}
	st.Exec(insert("(1, 100), (2, 100)"))
	// Debezium goes on writing: a later transaction, staged after the
	// resolver found the first without END.
	writes, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	source, err := pgx.Connect(ctx, st.SourceURL)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close(ctx)
	wrote := make(chan error, 1)
	go func() {
		for id := 3; ; id++ {
			select {
			case <-writes.Done():
				wrote <- nil
				return
			case <-time.After(3 * time.Second):
				if _, err := source.Exec(writes, insert(fmt.Sprintf("(%d, 100)", id))); err != nil && writes.Err() == nil {
					wrote <- err
					return
				}
			}
		}
	}()
	stopped := resolverStopped(t, cfg, targetURL, txTopic)
	stopWrites()
	if err := <-wrote; err != nil {
		t.Fatalf("writing to the source meanwhile: %v", err)
	}
	if !strings.Contains(stopped, "its END never came") || !strings.Contains(stopped, "2 events staged since") {
		t.Fatalf("stop reason %q does not name the transaction staged without an END", stopped)
	}
	var rows int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM public.accounts`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d rows applied of a transaction without END (%v); want none", rows, err)
	}
	// What Debezium put in the staged records' transaction blocks: the
	// scenario's premise, checked on the stack's Debezium.
	var firstOrder, firstCollectionOrder int64
	if err := target.QueryRow(ctx, `SELECT total_order, (convert_from(record_value, 'UTF8')::jsonb #>> '{transaction,data_collection_order}')::bigint
		FROM pgsink.tx_staged ORDER BY tx_id, total_order LIMIT 1`).Scan(&firstOrder, &firstCollectionOrder); err != nil {
		t.Fatalf("reading the first staged record's transaction block: %v", err)
	}
	wantOrder := int64(1)
	if first != "" {
		wantOrder = 2
	}
	t.Logf("the first staged record of the first transaction: total_order %d, data_collection_order %d", firstOrder, firstCollectionOrder)
	if firstOrder != wantOrder || firstCollectionOrder != 1 {
		t.Errorf("the first transaction's first staged record has total_order %d and data_collection_order %d, want %d and 1", firstOrder, firstCollectionOrder, wantOrder)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

// TestE2ELargeTransaction: one source transaction of many rows (200,000;
// PGSINK_TEST_LARGE_TX_ROWS=1000000 for the million) becomes
// visible in the target at once — a REPEATABLE READ reader sees none of
// its rows or all — while pgsink's peak resident memory, measured on a
// binary built without the race detector, stays within a budget derived
// from apply.max_buffered_bytes: the resolver holds a chunk, not the
// transaction.
func TestE2ELargeTransaction(t *testing.T) {
	rows := 200_000
	if v := os.Getenv("PGSINK_TEST_LARGE_TX_ROWS"); v != "" {
		if _, err := fmt.Sscan(v, &rows); err != nil {
			t.Fatalf("PGSINK_TEST_LARGE_TX_ROWS=%q: %v", v, err)
		}
	}
	plain := filepath.Join(t.TempDir(), "pgsink")
	build := exec.Command("go", "build", "-o", plain, "github.com/pgsink/pgsink/cmd/pgsink")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pgsink without -race: %v\n%s", err, out)
	}
	ctx := context.Background()
	b := newBankPipeline(t, map[string]int{"accounts": 4}, map[string]string{"table.include.list": "public.accounts"})
	cfg := tableConfig(b.st, b.topic("accounts"), "public.accounts", "") +
		fmt.Sprintf("apply:\n  consistency: transaction\n  max_buffered_bytes: 16MiB\n  batch: { max_bytes: 4MiB }\n  transaction: { topic: %s, max_wait: 10m, max_staged_bytes: 1MiB }\n", b.txTopic)
	const budget = 256 << 20 // the Go heap's soft limit (2 × 16 MiB + 64 MiB) and librdkafka's queues, with room
	p := startPgsinkBinary(t, plain, cfg, "TARGET_URL="+b.targetURL)

	reader, err := pgxpool.New(ctx, b.targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	b.st.Exec(fmt.Sprintf(`INSERT INTO public.accounts SELECT i, 0 FROM generate_series(1, %d) i`, rows))
	var seen []int64
	wait := time.Duration(rows) * 3 * time.Millisecond // generous: Debezium, staging and the apply share a loaded machine
	start := time.Now()
	deadline := start.Add(wait)
	nextReport := start.Add(30 * time.Second)
	for {
		var n int64
		if err := reader.QueryRow(ctx, `SELECT count(*) FROM public.accounts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 && n != int64(rows) {
			t.Fatalf("a reader saw %d of the transaction's %d rows", n, rows)
		}
		if len(seen) == 0 || seen[len(seen)-1] != n {
			seen = append(seen, n)
		}
		if n == int64(rows) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the transaction of %d rows was not applied within %s; where it stood: %s", rows, wait, largeTxProgress(ctx, reader, b.st.ID, b.txTopic))
		}
		if time.Now().After(nextReport) {
			t.Logf("after %s: %s", time.Since(start).Round(time.Second), largeTxProgress(ctx, reader, b.st.ID, b.txTopic))
			nextReport = time.Now().Add(30 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	peak := peakRSS(t, p.cmd.Process.Pid)
	cpu := processCPU(t, p.cmd.Process.Pid)
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
	t.Logf("%d rows applied at once %s after the source's INSERT (the reader saw %v); pgsink's peak RSS %d MiB, budget %d MiB (the Go heap's soft limit 96 MiB); pgsink's CPU %.1f s; %s",
		rows, took.Round(time.Second), seen, peak>>20, budget>>20, cpu.Seconds(), applyPhases(t, p.Logs()))
	if peak > budget {
		t.Errorf("peak RSS %d MiB over the budget of %d MiB", peak>>20, budget>>20)
	}
	// The transaction is far larger than apply.transaction.max_staged_bytes:
	// the partitions stopped at it, and staged on once the resolver, at
	// the END, marked that it waits for them (stagebound.go).
	if !strings.Contains(p.Logs(), "partition waits before staging more") {
		t.Error("no partition waited at apply.transaction.max_staged_bytes: the test did not cross the bound")
	}
}

// largeTxProgress says where a large transaction stands, for a failure
// and for the progress log: the records staged and the transactions
// resolved, the resolver's position, and what pgsink's sessions do in the
// target (staging, counting, or the resolver's long apply transaction).
func largeTxProgress(ctx context.Context, db *pgxpool.Pool, group, txTopic string) string {
	var staged, resolved, position int64
	var stopped *string
	err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgsink.tx_staged WHERE group_id = $1),
		(SELECT count(*) FROM pgsink.tx_resolved WHERE group_id = $1),
		coalesce((SELECT next_offset FROM pgsink.offsets WHERE group_id = $1 AND topic = $2), -1),
		(SELECT stopped_reason FROM pgsink.offsets WHERE group_id = $1 AND topic = $2)`, group, txTopic).
		Scan(&staged, &resolved, &position, &stopped)
	if err != nil {
		return fmt.Sprintf("(progress unreadable: %v)", err)
	}
	out := fmt.Sprintf("%d records staged, %d transactions resolved, resolver at offset %d", staged, resolved, position)
	if stopped != nil {
		out += ", resolver stopped: " + *stopped
	}
	rows, err := db.Query(ctx, `SELECT state, coalesce(wait_event, ''), coalesce(extract(epoch FROM now() - xact_start)::int, 0),
		regexp_replace(left(query, 90), '\s+', ' ', 'g')
		FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgsink'`)
	if err != nil {
		return out + fmt.Sprintf("; sessions unreadable: %v", err)
	}
	var sessions []string
	var state, wait, query string
	var xactAge int
	_, err = pgx.ForEachRow(rows, []any{&state, &wait, &xactAge, &query}, func() error {
		if state != "idle" {
			sessions = append(sessions, fmt.Sprintf("[%s %s xact %ds: %s]", state, wait, xactAge, query))
		}
		return nil
	})
	if err != nil {
		return out + fmt.Sprintf("; sessions unreadable: %v", err)
	}
	return out + "; busy sessions: " + strings.Join(sessions, " ")
}

// applyPhases picks the resolver's timing of its apply out of pgsink's log
// (the resolver logs each transaction's phases at info).
func applyPhases(t *testing.T, logs string) string {
	t.Helper()
	var phases []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "resolver applied") {
			phases = append(phases, strings.TrimSpace(line))
		}
	}
	if len(phases) == 0 {
		return "no resolver timing in the log"
	}
	return strings.Join(phases, "; ")
}

// processCPU reads a process's user and system CPU time from /proc.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th, in clock ticks (100 a second on
	// Linux).
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var utime, stime int64
	if _, err := fmt.Sscan(fields[11], &utime); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(fields[12], &stime); err != nil {
		t.Fatal(err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakRSS reads a process's peak resident set size (VmHWM) from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestE2ETransactionRefusedRecord: a staged record the target refuses (a
// constraint only the target has) stops the resolver with the reason in
// status; its transaction is not applied minus the record, nor is any
// later one.
func TestE2ETransactionRefusedRecord(t *testing.T) {
	ctx := context.Background()
	b := newBankPipeline(t, map[string]int{"accounts": 2}, map[string]string{"table.include.list": "public.accounts"})
	if _, err := b.target.Exec(ctx, `ALTER TABLE public.accounts ADD CHECK (balance >= 0)`); err != nil {
		t.Fatal(err)
	}
	cfg := tableConfig(b.st, b.topic("accounts"), "public.accounts", "") +
		fmt.Sprintf("apply:\n  consistency: transaction\n  transaction: { topic: %s }\n", b.txTopic)
	p := startPgsink(t, cfg, "TARGET_URL="+b.targetURL)
	b.st.Exec(`INSERT INTO public.accounts VALUES (1, 100), (2, 100)`)
	b.st.Exec(`BEGIN; UPDATE public.accounts SET balance = 250 WHERE id = 1; UPDATE public.accounts SET balance = -50 WHERE id = 2; COMMIT`)
	b.st.Exec(`UPDATE public.accounts SET balance = 7 WHERE id = 1`)
	stopped := resolverStopped(t, cfg, b.targetURL, b.txTopic)
	if !strings.Contains(stopped, "the resolver stopped; nothing after it is applied") || !strings.Contains(stopped, "23514") {
		t.Fatalf("stop reason %q does not say the target refused a record of the transaction", stopped)
	}
	var balances string
	if err := b.target.QueryRow(ctx, `SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM public.accounts`).Scan(&balances); err != nil {
		t.Fatal(err)
	}
	if balances != "1:100,2:100" {
		t.Fatalf("accounts %s: want the refused transaction not applied in part, nor the one after it (1:100,2:100)", balances)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

// statusPartition is what the tests read of a partition's line in
// `pgsink status --json`.
type statusPartition struct {
	Topic        string   `json:"topic"`
	Partition    int32    `json:"partition"`
	Stopped      string   `json:"stopped"`
	Staged       int64    `json:"staged"`
	CaughtUp     bool     `json:"caught_up"`
	BehindSource *float64 `json:"behind_source_seconds"`
}

// statusPartitions runs `pgsink status --json` once.
func statusPartitions(t *testing.T, cfg, targetURL string) []statusPartition {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "status", "--config", cfgPath, "--json")
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var report struct {
		Partitions []statusPartition `json:"partitions"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return report.Partitions
}

// checkDirectMetrics checks the local path's series on a running instance
// that owns every data partition (dataPartitions of them) and is quiet:
// one pgsink_transaction_direct_partition series per data partition, and
// as many leaves counted under the reasons its worker logs
// (`partition leaves the local path and stages`) as such log lines; the
// others (reclaim, stopped, revoked) are dropped without that line.
func checkDirectMetrics(t *testing.T, p *process, port, dataPartitions int) {
	t.Helper()
	logged := regexp.MustCompile(`partition leaves the local path and stages`)
	gauge := regexp.MustCompile(`(?m)^pgsink_transaction_direct_partition\{[^}]*\} (\S+)$`)
	leaves := regexp.MustCompile(`(?m)^pgsink_transaction_direct_leaves_total\{reason="([a-z_]+)",topic="[^"]*"\} (\S+)$`)
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		before := len(logged.FindAllStringIndex(p.Logs(), -1))
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		after := len(logged.FindAllStringIndex(p.Logs(), -1))
		series := len(gauge.FindAllSubmatch(body, -1))
		counted := map[string]float64{}
		var withLine float64
		for _, m := range leaves.FindAllSubmatch(body, -1) {
			v, _ := strconv.ParseFloat(string(m[2]), 64)
			counted[string(m[1])] += v
			switch string(m[1]) {
			case "reclaim", "stopped", "revoked":
			default:
				withLine += v
			}
		}
		last = fmt.Sprintf("%d pgsink_transaction_direct_partition series (want %d); leaves counted %v, %v of them with a log line, %d..%d such lines logged",
			series, dataPartitions, counted, withLine, before, after)
		if series == dataPartitions && before == after && withLine == float64(after) {
			t.Logf("local path metrics: %s", last)
			return
		}
	}
	t.Errorf("the local path's metrics disagree with the instance: %s", last)
}
