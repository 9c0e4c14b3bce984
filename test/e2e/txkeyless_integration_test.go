//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2ETransactionKeylessDuplicate: under apply.consistency: transaction,
// a source table without a primary key (Debezium sends no record key) is
// mirrored while its configured key is unique at the source; a source
// transaction that inserts a second row of a key already held stops the
// resolver at it, saying that two source rows share the key, and neither
// it nor anything after it is applied — as a partition stops on it in
// partition mode (TestE2EKeylessUniqueThenDuplicate). Before, the check ran
// only in the partitions' batches, on records they staged, against a target
// without the transactions staged before them: the duplicate was
// dead-lettered, so its transaction's END never completed (and a key
// deleted in one transaction and created in the next could be taken for a
// duplicate the same way).
func TestE2ETransactionKeylessDuplicate(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.pairs (a integer NOT NULL, b text NOT NULL, d integer)`)
	st.Exec(`ALTER TABLE public.pairs REPLICA IDENTITY FULL`)
	st.Exec(`INSERT INTO public.pairs VALUES (1, 'x', 10)`)
	topic, txTopic := st.TopicPrefix+".public.pairs", st.TopicPrefix+".transaction"
	for name, n := range map[string]int{topic: 2, txTopic: 1} {
		if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, name, n); err != nil {
			t.Fatal(err)
		}
	}
	st.RegisterDebezium("pairs", map[string]string{"table.include.list": "public.pairs", "provide.transaction.metadata": "true"})
	targetURL, target := targetWith(t, `CREATE TABLE public.pairs (a integer, b text, d integer, _pgsink_commit_lsn bigint, _pgsink_lsn bigint, PRIMARY KEY (a, b))`)
	cfg := tableConfig(st, topic, "public.pairs", "    key: [a, b]\n") +
		fmt.Sprintf("apply:\n  consistency: transaction\n  transaction: { topic: %s, max_wait: 10m }\n", txTopic)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	rows := func() string {
		t.Helper()
		var s string
		if err := target.QueryRow(ctx, `SELECT coalesce(string_agg(a || b || '=' || d, ',' ORDER BY a, b), '') FROM public.pairs`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	st.Exec(`BEGIN; INSERT INTO public.pairs VALUES (2, 'y', 20); UPDATE public.pairs SET d = 11 WHERE a = 1; COMMIT`)
	eventually(t, 90*time.Second, "the snapshot and a transaction applied", func() (bool, string) {
		s := rows()
		return s == "1x=11,2y=20", s
	})
	// A key deleted and created again, in two source transactions: no
	// duplicate.
	st.Exec(`DELETE FROM public.pairs WHERE a = 2`)
	st.Exec(`INSERT INTO public.pairs VALUES (2, 'y', 21)`)
	eventually(t, 90*time.Second, "a key deleted and inserted again", func() (bool, string) {
		s := rows()
		return s == "1x=11,2y=21", s
	})
	st.Exec(`BEGIN; INSERT INTO public.pairs VALUES (3, 'z', 30); INSERT INTO public.pairs VALUES (1, 'x', 99); COMMIT`)
	st.Exec(`INSERT INTO public.pairs VALUES (4, 'w', 40)`)
	defer func() {
		var reasons string
		_ = target.QueryRow(ctx, `SELECT coalesce(string_agg(error, '; '), '') FROM pgsink.dead_letters`).Scan(&reasons)
		if reasons != "" {
			t.Logf("dead letters: %s", reasons)
		}
	}()
	stopped := resolverStopped(t, cfg, targetURL, txTopic)
	if !strings.Contains(stopped, "two source rows share the target key") || !strings.Contains(stopped, "no primary key") {
		t.Fatalf("stop reason %q does not say that two source rows share a key", stopped)
	}
	if got := rows(); got != "1x=11,2y=21" {
		t.Fatalf("target %s: want neither the transaction with the duplicate nor the one after it applied (1x=11,2y=21)", got)
	}
	var dead int
	if err := target.QueryRow(ctx, `SELECT count(*) FROM pgsink.dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Errorf("%d dead letters (%v): a record of a source transaction is checked by the resolver, not dead-lettered by its partition", dead, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}
