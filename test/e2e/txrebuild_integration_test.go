//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EOnlineRebuildTransactionConsistent: `replay --rebuild --online`
// under apply.consistency: transaction while a source transaction is staged
// and not applied (it also writes a table pgsink is not configured for, so
// its END never completes): the swapped-in table holds the transactions the
// resolver applied and the snapshot, and no part of the staged one nor of
// the one after it, which the resolver has not applied either. The staged
// records are kept for the resolver. Before the fix the shadow was caught
// up to the instances' positions, staged records included: the swap showed
// readers the staged half of a transfer.
func TestE2EOnlineRebuildTransactionConsistent(t *testing.T) {
	ctx := context.Background()
	tp := newTransferPipeline(t, "", 0)
	targetURL, cfg, p := tp.targetURL, tp.cfg, tp.p
	balances := func() string { return tp.balances(t, "public.accounts") }
	staged := func() int64 { return tp.staged(t) }
	// A transfer whose END waits for public.orders, and one after it.
	tp.stageUnapplied(t, 90, 110, 40)

	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "replay", "--config", cfgPath, "--table", "public.accounts", "--rebuild", "--online")
	cmd.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-rctx.Done():
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the online rebuild did not finish in 3 minutes:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "swapped the rebuilt table in") {
		t.Fatalf("online rebuild: %v\n%s", err, out)
	}
	t.Logf("online rebuild:\n%s", out)
	if got := balances(); got != "1:100,2:100,3:50" {
		t.Fatalf("after the swap the table holds %s: want the applied transactions and the snapshot (1:100,2:100,3:50), no part of the staged transfer nor of the update after it", got)
	}
	// The instances read the staged records again from where the shadow
	// ended, and go on to the end of each partition (their positions show
	// it: an instance that never resumed would leave the count of staged
	// records right too): the records are kept once, for the resolver.
	topic := tp.topic("accounts")
	eventually(t, 60*time.Second, "the instances at the end of public.accounts' partitions after the swap", func() (bool, string) {
		var behind []string
		for part := int32(0); part < 2; part++ {
			high, err := stacktest.HighWatermark(tp.st.Env.KafkaBootstrap, topic, part)
			if err != nil {
				return false, err.Error()
			}
			var next int64
			if err := tp.target.QueryRow(ctx, `SELECT next_offset FROM pgsink.offsets WHERE topic = $1 AND partition = $2`, topic, part).Scan(&next); err != nil {
				return false, err.Error()
			}
			if next < high {
				behind = append(behind, fmt.Sprintf("partition %d at %d of %d", part, next, high))
			}
		}
		return len(behind) == 0, strings.Join(behind, ", ")
	})
	if n := staged(); n != 3 {
		t.Errorf("%d records staged after the rebuild, want the same 3", n)
	}
	if got := balances(); got != "1:100,2:100,3:50" {
		t.Errorf("after the instances went on the table holds %s, want 1:100,2:100,3:50", got)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

// transferPipeline is the pipeline of the rebuild and copy tests under
// apply.consistency: transaction: public.accounts on two partitions (3:50
// from the snapshot, then 1:100 and 2:100 in a transaction, applied), and
// public.orders captured but not configured, so that a transaction writing
// it never completes. txOptions are added to apply.transaction's, and
// pgsink's metrics listen on metricsPort (0: any).
type transferPipeline struct {
	*bankPipeline
	cfg string
	p   *process
}

func newTransferPipeline(t *testing.T, txOptions string, metricsPort int) *transferPipeline {
	t.Helper()
	b := newBankPipeline(t, map[string]int{"accounts": 2, "orders": 1}, map[string]string{"table.include.list": "public.accounts,public.orders"},
		`INSERT INTO public.accounts VALUES (3, 50)`)
	cfg := strings.Replace(tableConfig(b.st, b.topic("accounts"), "public.accounts", ""), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", metricsPort), 1)
	if txOptions == "" {
		txOptions = "max_wait: 10m"
	}
	tp := &transferPipeline{bankPipeline: b, cfg: cfg + fmt.Sprintf("apply:\n  consistency: transaction\n  transaction: { topic: %s, %s }\n", b.txTopic, txOptions)}
	tp.p = startPgsink(t, tp.cfg, "TARGET_URL="+b.targetURL)
	b.st.Exec(`INSERT INTO public.accounts VALUES (1, 100), (2, 100)`)
	tp.waitBalances(t, "1:100,2:100,3:50", "the first transaction applied")
	return tp
}

// balances reads a table of accounts as id:balance,…
func (tp *transferPipeline) balances(t *testing.T, table string) string {
	t.Helper()
	var s string
	if err := tp.target.QueryRow(context.Background(), `SELECT coalesce(string_agg(id || ':' || balance, ',' ORDER BY id), '') FROM `+table).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (tp *transferPipeline) waitBalances(t *testing.T, want, what string) {
	t.Helper()
	eventually(t, 90*time.Second, what, func() (bool, string) {
		s := tp.balances(t, "public.accounts")
		return s == want, s
	})
}

// staged counts the records in pgsink.tx_staged.
func (tp *transferPipeline) staged(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := tp.target.QueryRow(context.Background(), `SELECT count(*) FROM pgsink.tx_staged`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// stageUnapplied commits a transfer that sets accounts 1 and 2 to one and
// two and writes public.orders (its END never completes), then an update
// of account 3 to three, and waits until the three records are staged.
func (tp *transferPipeline) stageUnapplied(t *testing.T, one, two, three int) {
	t.Helper()
	tp.st.Exec(fmt.Sprintf(`BEGIN; UPDATE public.accounts SET balance = %d WHERE id = 1; UPDATE public.accounts SET balance = %d WHERE id = 2;
		INSERT INTO public.orders VALUES (1, 'not configured'); COMMIT`, one, two))
	tp.st.Exec(fmt.Sprintf(`UPDATE public.accounts SET balance = %d WHERE id = 3`, three))
	eventually(t, 90*time.Second, "a transfer not applied and the update after it staged", func() (bool, string) {
		n := tp.staged(t)
		return n == 3, fmt.Sprintf("%d staged", n)
	})
}
