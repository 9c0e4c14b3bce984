//go:build integration

package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/test/stacktest"
)

// The transaction-consistent scenarios (1t, 3t, 4t, 7t) run the suite's
// faults under apply.consistency: transaction, with Debezium's
// provide.transaction.metadata=true. Beside the accounts, every workload
// transaction moves money between two bank accounts (keys on different
// partitions) and one in four also inserts an order with its lines (two more
// tables, topics of their own): multi-row, multi-partition, multi-table
// source transactions. A reader polls the target in REPEATABLE READ from the
// start (stacktest.BankReader), and the T invariant holds when it never saw
// part of a source transaction and every source transaction was resolved
// exactly once. The outbox is left out: the Event Router drops the
// transaction block, which this mode does not support (docs/transactions.md).

const (
	txBankAccounts = 16
	txBankBalance  = 1000
	// txPause is the least pause between two workload transactions.
	txPause = 10 * time.Millisecond
)

const txBankSourceDDL = `CREATE TABLE public.bank (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE public.orders (id int PRIMARY KEY, customer text NOT NULL);
CREATE TABLE public.order_lines (order_id int, line int, amount bigint NOT NULL, PRIMARY KEY (order_id, line))`

const txBankTargetDDL = `CREATE TABLE public.bank (id int PRIMARY KEY, balance bigint NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint);
CREATE TABLE public.orders (id int PRIMARY KEY, customer text NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint);
CREATE TABLE public.order_lines (order_id int, line int, amount bigint NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint, PRIMARY KEY (order_id, line))`

// txBankQuery is what C compares of the bank tables, source and target.
const txBankQuery = `SELECT md5(coalesce((SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM public.bank), '') || '/' ||
	coalesce((SELECT string_agg(id || ':' || customer, ',' ORDER BY id) FROM public.orders), '') || '/' ||
	coalesce((SELECT string_agg(order_id || '.' || line || ':' || amount, ',' ORDER BY order_id, line) FROM public.order_lines), ''))`

var txBank = stacktest.Bank{Accounts: "public.bank", Orders: "public.orders", Lines: "public.order_lines", N: txBankAccounts, Balance: txBankBalance}

// txBankTopics are the bank tables and the partitions of their topics.
var txBankTopics = []struct {
	table      string
	partitions int
}{{"bank", 3}, {"orders", 2}, {"order_lines", 3}}

// txScenario is what a transaction-consistent scenario adds to a scenario.
type txScenario struct {
	txTopic    string
	dataTopics []string // the bank tables' topics
	partitions int      // of the bank topics and the transaction topic
	reader     *stacktest.BankReader
}

// transactionSource creates the bank tables in the source, seeds the
// accounts (read by the snapshot), creates their topics and the transaction
// topic, and sets the connector's overrides: the bank tables captured,
// transaction metadata on, the outbox and its router left out.
func (s *scenario) transactionSource(overrides map[string]string) *txScenario {
	ctx := context.Background()
	s.st.Exec(txBankSourceDDL)
	s.st.Exec(fmt.Sprintf(`INSERT INTO public.bank SELECT i, %d FROM generate_series(1, %d) i`, txBankBalance, txBankAccounts))
	x := &txScenario{txTopic: s.st.TopicPrefix + ".transaction", partitions: 1}
	if err := createTopic(ctx, s.st.Env.KafkaBootstrap, x.txTopic, 1); err != nil {
		s.t.Fatal(err)
	}
	include := []string{"public.accounts"}
	for _, b := range txBankTopics {
		topic := s.st.TopicPrefix + ".public." + b.table
		if err := createTopic(ctx, s.st.Env.KafkaBootstrap, topic, b.partitions); err != nil {
			s.t.Fatal(err)
		}
		x.dataTopics = append(x.dataTopics, topic)
		x.partitions += b.partitions
		include = append(include, "public."+b.table)
	}
	for k := range overrides {
		if strings.HasPrefix(k, "transforms") || strings.HasPrefix(k, "predicates") {
			delete(overrides, k)
		}
	}
	overrides["table.include.list"] = strings.Join(include, ",")
	overrides["provide.transaction.metadata"] = "true"
	s.load.bank = &bankLoad{xids: map[int64]bool{}}
	return x
}

// transactionTarget creates the bank tables in the target, starts the
// reader, and returns pgsink's table entries of the bank tables and its
// apply section's transaction settings.
func (s *scenario) transactionTarget() (tables, apply string) {
	s.exec(txBankTargetDDL)
	s.tx.reader = stacktest.StartBankReader(s.t, s.targetURL, txBank, 5*time.Millisecond)
	for i, b := range txBankTopics {
		tables += fmt.Sprintf("  - topic: %s\n    target: public.%s\n", s.tx.dataTopics[i], b.table)
	}
	// max_wait longer than Connect is down in scenario 7t: a Connect
	// killed with -9 loses data events in flight whose END got through,
	// and they come back only with Debezium's re-emission once Connect
	// has restarted and caught up (docs/transactions.md). A staging bound
	// small enough that partitions reach it while the resolver is behind
	// (a kill, a storm): the faults meet partitions waiting on it.
	staging := "logged"
	if s.unlogged {
		staging = "unlogged"
	}
	local := ""
	if localPath() {
		local = ", direct_local_partitions: true"
	}
	apply = fmt.Sprintf("  consistency: transaction\n  transaction: { topic: %s, max_wait: 10m, max_staged_bytes: 16KiB, staging: %s%s }\n", s.tx.txTopic, staging, local)
	return tables, apply
}

// localPathEnv runs the transaction-mode scenarios with
// apply.transaction.direct_local_partitions on when set to 1: the data
// partitions of the resolver's instance hand it their records unstaged
// (docs/transactions.md, The local path), and scenario 1t arms its two
// failpoints too.
const localPathEnv = "PGSINK_FAULTS_TX_LOCAL"

func localPath() bool { return os.Getenv(localPathEnv) == "1" }

// partitions is how many partitions the instances share between them:
// the accounts' and the outbox's, or, in the transaction-consistent form,
// the accounts', the bank tables' and the transaction topic's.
func (s *scenario) partitions(perTopic int) int {
	if s.tx != nil {
		return perTopic + s.tx.partitions
	}
	return 2 * perTopic
}

// auditedTopics are the topics whose records the audit must list once each.
func (s *scenario) auditedTopics() []string {
	if s.tx != nil {
		return append([]string{s.topic}, s.tx.dataTopics...)
	}
	return []string{s.topic, s.outboxTopic}
}

// bankChecksum is C's part of the bank tables ("" outside the
// transaction-consistent form).
func (s *scenario) bankChecksum(ctx context.Context, conn *pgx.Conn) (string, error) {
	if s.tx == nil {
		return "", nil
	}
	var sum string
	err := conn.QueryRow(ctx, txBankQuery).Scan(&sum)
	return "+bank " + sum, err
}

// bankLoad is the workload's bank part: a transfer in every transaction,
// an order with its lines in one in four.
type bankLoad struct {
	orders int
	events int
	xids   map[int64]bool // the source transactions committed
	// uncertain is a transaction whose COMMIT failed with the server
	// (scenario 6t): it may have committed; settle asks the server.
	uncertain *bankTx
}

// bankTx is what one transaction wrote, counted once it commits.
type bankTx struct {
	order  bool
	events int
	xid    int64
	xid8   int64 // the full transaction id, for pg_xact_status
	// accountEvents are the accounts' row changes of the same transaction.
	accountEvents int
}

func (b *bankLoad) write(ctx context.Context, tx pgx.Tx, rng *rand.Rand) (bankTx, error) {
	from, to := 1+rng.IntN(txBankAccounts), 1+rng.IntN(txBankAccounts-1)
	if to >= from {
		to++
	}
	amount := 1 + rng.IntN(50)
	w := bankTx{events: 2}
	if _, err := tx.Exec(ctx, `UPDATE public.bank SET balance = balance - $2 WHERE id = $1`, from, amount); err != nil {
		return w, err
	}
	if _, err := tx.Exec(ctx, `UPDATE public.bank SET balance = balance + $2 WHERE id = $1`, to, amount); err != nil {
		return w, err
	}
	if rng.IntN(4) == 0 {
		id := b.orders + 1
		if _, err := tx.Exec(ctx, `INSERT INTO public.orders VALUES ($1::int, 'customer ' || $1::int)`, id); err != nil {
			return w, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO public.order_lines SELECT $1::int, l, l * 10 FROM generate_series(1, $2::int) l`, id, stacktest.OrderLines(id)); err != nil {
			return w, err
		}
		w.order, w.events = true, w.events+1+stacktest.OrderLines(id)
	}
	// Debezium's transaction id is the 32-bit xid.
	err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&w.xid8)
	w.xid = w.xid8 % 4294967296
	return w, err
}

// settle resolves the transaction whose COMMIT failed with the server:
// counted if the server committed it, forgotten if not. The workload must be
// stopped (it holds the workload's lock, like a transaction).
func (w *workload) settle(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	u := w.bank.uncertain
	if u == nil {
		return nil
	}
	conn, err := pgx.Connect(ctx, w.url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var status *string
	err = conn.QueryRow(ctx, `SELECT pg_xact_status($1::text::xid8)`, fmt.Sprint(u.xid8)).Scan(&status)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22023" && strings.Contains(pgErr.Message, "in the future") {
		// Past the next xid recovery restored: nothing of it reached the
		// WAL, its commit record least of all.
		future := "not in the WAL (in the future)"
		status, err = &future, nil
	}
	if err != nil {
		return err
	}
	w.t.Logf("workload: the transaction whose COMMIT failed with the server (xid %d) is %v", u.xid8, deref(status))
	if status != nil && *status == "committed" {
		w.events += u.accountEvents
		w.bank.committed(*u)
	}
	w.bank.uncertain = nil
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "unknown"
	}
	return *s
}

func (b *bankLoad) committed(w bankTx) {
	if w.order {
		b.orders++
	}
	b.events += w.events
	b.xids[w.xid] = true
}

// checkT: the reader never saw part of a source transaction (a bank total
// other than the constant, an order without all its lines), and it saw
// every account at least once; every source transaction the workload
// committed was resolved exactly once (tx_resolved's key) and no other;
// nothing is left staged; the resolver's position is the transaction
// topic's end.
func (s *scenario) checkT(ctx context.Context) verdict {
	snapshots, violations := s.tx.reader.Finish()
	if len(violations) > 0 {
		return fail("the reader saw %d broken snapshots (%d with every account), the first: %s", len(violations), snapshots, violations[0])
	}
	if snapshots == 0 {
		return fail("the reader never saw every account: it checked nothing")
	}
	var staged int
	if err := s.target.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged WHERE group_id = $1`, s.st.ID).Scan(&staged); err != nil {
		return fail("%v", err)
	}
	resolved, err := keySet[int64](ctx, s.target, `SELECT tx_id FROM pgsink.tx_resolved WHERE group_id = $1`, s.st.ID)
	if err != nil {
		return fail("%v", err)
	}
	s.load.mu.Lock()
	want := make(map[int64]bool, len(s.load.bank.xids))
	for id := range s.load.bank.xids {
		want[id] = true
	}
	s.load.mu.Unlock()
	extra, missing := setDiff(want, resolved)
	var position int64
	if err := s.target.QueryRow(ctx, `SELECT coalesce(max(next_offset), -1) FROM pgsink.offsets WHERE topic = $1`, s.tx.txTopic).Scan(&position); err != nil {
		return fail("%v", err)
	}
	end := topicEnd(s.t, s.st.Env.KafkaBootstrap, s.tx.txTopic)
	var problems []string
	if staged > 0 {
		problems = append(problems, fmt.Sprintf("%d records left staged", staged))
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d committed source transactions never resolved, e.g. %v", len(missing), first(missing, 5)))
	}
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("%d resolved transactions the workload never committed, e.g. %v", len(extra), first(extra, 5)))
	}
	if position != end {
		problems = append(problems, fmt.Sprintf("the resolver's position %d is not the transaction topic's end %d; %s", position, end, s.txTrace(position)))
	}
	if len(problems) > 0 {
		return fail("%s", strings.Join(problems, "; "))
	}
	return pass(fmt.Sprintf("%d REPEATABLE READ snapshots with every account, none showing part of a source transaction; %d source transactions resolved once each, the workload's; nothing left staged; the resolver at the transaction topic's end (%d)",
		snapshots, len(resolved), end))
}

// txTrace says where the first END the resolver has not passed stands, when
// T fails: the END, and every record of its transaction in the data topics
// (by source.txId, with or without a transaction block), so that a missing
// event is told from one staged under another key.
func (s *scenario) txTrace(position int64) string {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": s.st.Env.KafkaBootstrap, "group.id": s.st.ID + "-trace", "enable.auto.commit": false})
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	type envelope struct {
		Payload struct {
			Status      string               `json:"status"`
			ID          string               `json:"id"`
			EventCount  int64                `json:"event_count"`
			Op          string               `json:"op"`
			Source      struct{ TxID int64 } `json:"source"`
			Transaction *struct {
				ID         string `json:"id"`
				TotalOrder int64  `json:"total_order"`
			} `json:"transaction"`
		} `json:"payload"`
	}
	read := func(topic string, partition int32, from int64, each func(m *kafka.Message, e envelope) bool) {
		_, high, err := c.QueryWatermarkOffsets(topic, partition, 10000)
		if err != nil || from >= high {
			return
		}
		if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.Offset(from)}}); err != nil {
			return
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			m, err := c.ReadMessage(time.Second)
			if err != nil {
				continue
			}
			var e envelope
			_ = json.Unmarshal(m.Value, &e)
			if !each(m, e) || int64(m.TopicPartition.Offset) >= high-1 {
				return
			}
		}
	}
	var end envelope
	var endAt int64 = -1
	var ends []string
	read(s.tx.txTopic, 0, position, func(m *kafka.Message, e envelope) bool {
		if e.Payload.Status == "END" {
			end, endAt = e, int64(m.TopicPartition.Offset)
			return false
		}
		return true
	})
	if endAt < 0 {
		return "no END at or past the resolver's position"
	}
	txID, _, _ := strings.Cut(end.Payload.ID, ":")
	read(s.tx.txTopic, 0, 0, func(m *kafka.Message, e envelope) bool {
		if id, _, _ := strings.Cut(e.Payload.ID, ":"); id == txID {
			ends = append(ends, fmt.Sprintf("%s@%d", e.Payload.Status, m.TopicPartition.Offset))
		}
		return true
	})
	var records []string
	for i, topic := range append([]string{s.topic}, s.tx.dataTopics...) {
		n := 3
		if i > 0 {
			n = txBankTopics[i-1].partitions
		}
		for p := range int32(n) {
			read(topic, p, 0, func(m *kafka.Message, e envelope) bool {
				if fmt.Sprint(e.Payload.Source.TxID) != txID {
					return true
				}
				tx := "no transaction block"
				if e.Payload.Transaction != nil {
					tx = fmt.Sprintf("total_order %d", e.Payload.Transaction.TotalOrder)
				}
				records = append(records, fmt.Sprintf("%s[%d]@%d op %s %s", topic[strings.LastIndexByte(topic, '.')+1:], p, m.TopicPartition.Offset, e.Payload.Op, tx))
				return true
			})
		}
	}
	var staged []string
	rows, _ := s.target.Query(context.Background(), `SELECT topic || '[' || partition || ']@' || kafka_offset || ' total_order ' || total_order FROM pgsink.tx_staged WHERE group_id = $1 AND tx_id = $2::bigint ORDER BY total_order`, s.st.ID, txID)
	staged, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	return fmt.Sprintf("the first END past the resolver's position %d: transaction %s of %d events at offset %d (its markers: %v); its records in the data topics: %v; staged: %v",
		position, end.Payload.ID, end.Payload.EventCount, endAt, ends, records, staged)
}
