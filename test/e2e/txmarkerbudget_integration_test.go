//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// markerBudgetTransactions is the backlog of TestE2ETransactionMarkerBudget:
// BEGIN and END markers enough to fill the transaction topic's queue
// (2 × apply.batch.max_records) three times over, so that it stays full
// while the resolver waits at an END of the backlog's first third.
const markerBudgetTransactions = 1500

// TestE2ETransactionMarkerBudget: pgsink starts in apply.consistency:
// transaction on a backlog of many small source transactions, each a
// transfer between two accounts and an order with its lines, with a buffer
// budget that the transaction topic's queued markers alone more than fill.
// While the resolver waits at an END the markers run ahead of it; counted
// in the data partitions' budget they kept it over the half under which a
// paused data partition resumes, every data partition stayed paused with
// nothing fetched to stage, and the END never completed. The markers count
// in a budget of their own (connector.markerBudget): the target converges,
// every transaction applied whole, and the transaction topic was paused on
// that budget, which shows the test crossed the condition.
func TestE2ETransactionMarkerBudget(t *testing.T) {
	ctx := context.Background()
	b := newBankPipeline(t, map[string]int{"accounts": 4, "orders": 2, "order_lines": 3},
		map[string]string{"table.include.list": "public.accounts,public.orders,public.order_lines"},
		fmt.Sprintf(`INSERT INTO public.accounts SELECT i, %d FROM generate_series(1, %d) i`, bankBalance, bankAccounts))
	// One source transaction per iteration: COMMIT in a DO block commits
	// each on its own, so the backlog is written in one round trip.
	b.st.Exec(fmt.Sprintf(`DO $$
BEGIN
	FOR i IN 1..%[1]d LOOP
		UPDATE public.accounts SET balance = balance - (1 + i %% 50) WHERE id = 1 + i %% %[2]d;
		UPDATE public.accounts SET balance = balance + (1 + i %% 50) WHERE id = 1 + (i + 1 + (i / %[2]d) %% (%[2]d - 1)) %% %[2]d;
		INSERT INTO public.orders VALUES (i, 'customer ' || i);
		INSERT INTO public.order_lines SELECT i, l, l * 10 FROM generate_series(1, i %% 4 + 1) l;
		COMMIT;
	END LOOP;
END $$`, markerBudgetTransactions, bankAccounts))
	// The whole backlog in Kafka before pgsink starts: the transaction
	// topic is then read far ahead of the data its ENDs wait for.
	eventually(t, 120*time.Second, "the backlog's markers are in Kafka", func() (bool, string) {
		n, err := stacktest.HighWatermark(b.st.Env.KafkaBootstrap, b.txTopic, 0)
		return err == nil && n >= 2*markerBudgetTransactions, fmt.Sprintf("%d markers (%v)", n, err)
	})

	// The transaction topic's queue holds 2 × 500 markers of a few
	// kilobytes each, their schema and predicted decoded size counted:
	// more than the whole 1 MiB budget. Refilled whenever it is half
	// empty, it alone kept the budget over the half under which a data
	// partition paused at the budget resumes, so that once the resolver
	// waited for records not fetched yet the stall did not depend on how
	// the first fetches interleaved.
	port := freePort(t)
	cfg := strings.Replace(tablesConfig(b.st, fmt.Sprintf("  - topic: %s\n    target: public.accounts\n  - topic: %s\n    target: public.orders\n  - topic: %s\n    target: public.order_lines\n",
		b.topic("accounts"), b.topic("orders"), b.topic("order_lines"))), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1) +
		fmt.Sprintf("apply:\n  consistency: transaction\n  max_buffered_bytes: 1MiB\n  batch: { max_records: 500, max_bytes: 256KiB }\n  transaction: { topic: %s, max_wait: 5m, max_staged_bytes: 16KiB }\n", b.txTopic)
	reader := stacktest.StartBankReader(t, b.targetURL, bank, 5*time.Millisecond)
	p := startPgsink(t, cfg, "TARGET_URL="+b.targetURL)
	started := time.Now()

	query := `SELECT (SELECT string_agg(id || ':' || balance, ',' ORDER BY id) FROM public.accounts) AS a,
		(SELECT count(*) FROM public.orders) AS o, (SELECT count(*) FROM public.order_lines) AS l`
	var resolved int
	eventually(t, 120*time.Second, "every source transaction resolved and the target equal to the source", func() (bool, string) {
		if err := reader.Pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_resolved`).Scan(&resolved); err != nil {
			return false, err.Error()
		}
		src, dst := checksum(t, b.st.SourceURL, query), checksum(t, b.targetURL, query)
		return resolved == markerBudgetTransactions && src == dst,
			fmt.Sprintf("%d of %d transactions resolved, source %s, target %s; %s; %s", resolved, markerBudgetTransactions, src, dst,
				budgetState(port), largeTxProgress(ctx, reader.Pool, b.st.ID, b.txTopic))
	})
	var staged int
	if err := reader.Pool.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_staged`).Scan(&staged); err != nil {
		t.Fatal(err)
	}
	if staged != 0 {
		t.Errorf("%d records left staged once every transaction was resolved; want none", staged)
	}
	snapshots, violations := reader.Finish()
	if len(violations) > 0 {
		t.Errorf("the reader saw %d violations in %d snapshots, the first: %s", len(violations), snapshots, violations[0])
	}
	if snapshots == 0 {
		t.Error("the reader never saw every account: it checked nothing")
	}
	state := budgetState(port)
	t.Logf("converged %s after pgsink started; %d snapshots with every account, none broken; %s", time.Since(started).Round(time.Second), snapshots, state)
	if pauses, ok := metricValue(port, `pgsink_partition_pauses_total{reason="marker_budget"}`); !ok || pauses == 0 {
		t.Errorf("the transaction topic was never paused on its markers' budget (%s): the markers did not run ahead of the resolver, the test did not cross the condition", state)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

var pausesRE = regexp.MustCompile(`(?m)^pgsink_partition_pauses_total\{reason="([^"]+)"\} (\S+)`)

// budgetState says what holds the buffer budget, for a failure: the bytes
// buffered (markers included) and the pauses by reason.
func budgetState(port int) string {
	buffered, _ := metricValue(port, "pgsink_buffered_bytes")
	out := fmt.Sprintf("pgsink_buffered_bytes %.0f, pauses:", buffered)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return out + " " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, m := range pausesRE.FindAllSubmatch(body, -1) {
		out += fmt.Sprintf(" %s %s", m[1], m[2])
	}
	return out
}
