//go:build integration

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestE2EReplayIntoTransactionConsistent: `replay --into` under
// apply.consistency: transaction holds the source transactions the
// resolver had applied when it began, each whole, and none after. A
// transfer staged and not applied (it also writes a table pgsink is not
// configured for, so its END never completes) and an update after it are
// absent from the copy as a whole, and the report says a partition ended
// there; a copy --until an LSN taken in the middle of an applied transfer
// holds neither half of it (its transaction is placed by its commit). Before
// the change the copy ended at the high watermarks, staged records included
// (1:80,2:120,3:40), and the LSN copy held the transfer's first half
// (1:90,2:100).
func TestE2EReplayIntoTransactionConsistent(t *testing.T) {
	ctx := context.Background()
	tp := newTransferPipeline(t, "", 0)
	st, targetURL, cfg := tp.st, tp.targetURL, tp.cfg
	balances := func(table string) string { return tp.balances(t, table) }
	// A transfer with a WAL position read between its two updates.
	src := st.Source()
	tx, err := src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lsn string
	if _, err := tx.Exec(ctx, `UPDATE public.accounts SET balance = 90 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE public.accounts SET balance = 110 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tp.waitBalances(t, "1:90,2:110,3:50", "the transfer applied")
	// A transfer whose END waits for public.orders, and an update after it.
	tp.stageUnapplied(t, 80, 120, 40)

	out := string(pgsinkOutput(t, cfg, []string{"TARGET_URL=" + targetURL}, "replay", "--table", "public.accounts", "--into", "public.accounts_now"))
	t.Logf("replay --into:\n%s", out)
	if got := balances("public.accounts_now"); got != "1:90,2:110,3:50" {
		t.Errorf("the copy holds %s: want the applied transactions and the snapshot (1:90,2:110,3:50), no part of the staged transfer nor of the update after it", got)
	}
	if !strings.Contains(out, "partitions ended at a source transaction the resolver had not applied") {
		t.Errorf("the report does not say that partitions ended at a transaction not applied:\n%s", out)
	}
	out = string(pgsinkOutput(t, cfg, []string{"TARGET_URL=" + targetURL}, "replay", "--table", "public.accounts", "--into", "public.accounts_lsn", "--until", "lsn:"+lsn))
	t.Logf("replay --into --until lsn:%s:\n%s", lsn, out)
	if got := balances("public.accounts_lsn"); got != "1:100,2:100,3:50" {
		t.Errorf("the copy --until lsn:%s, taken in the middle of the first transfer, holds %s: want neither half of it (1:100,2:100,3:50)", lsn, got)
	}
	if got := balances("public.accounts"); got != "1:90,2:110,3:50" {
		t.Errorf("the live table holds %s after the copies, want 1:90,2:110,3:50", got)
	}
	if code, _ := tp.p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

// TestE2EFillAfterPruning: fills under apply.consistency: transaction of
// topics older than retention.tombstones, whose transactions' tx_resolved
// rows were pruned (here deleted by hand, as the pruning does): `replay
// --into` and `replay --rebuild --online` take the records of those
// transactions as applied (they are at or below their partition's
// frontier, and neither recorded nor staged). Before, the copy ended at
// each partition's first such record (3:50 for 1:90,2:110,3:50), and the
// online rebuild swapped in a shadow ended there: the live table lost the
// rows.
func TestE2EFillAfterPruning(t *testing.T) {
	ctx := context.Background()
	tp := newTransferPipeline(t, "", 0)
	tp.st.Exec(`BEGIN; UPDATE public.accounts SET balance = 90 WHERE id = 1; UPDATE public.accounts SET balance = 110 WHERE id = 2; COMMIT`)
	tp.waitBalances(t, "1:90,2:110,3:50", "the transfer applied")
	eventually(t, 30*time.Second, "both transactions recorded applied", func() (bool, string) {
		var n int64
		if err := tp.target.QueryRow(ctx, `SELECT count(*) FROM pgsink.tx_resolved`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 2, ""
	})
	if _, err := tp.target.Exec(ctx, `DELETE FROM pgsink.tx_resolved`); err != nil {
		t.Fatal(err)
	}
	env := []string{"TARGET_URL=" + tp.targetURL}
	out := string(pgsinkOutput(t, tp.cfg, env, "replay", "--table", "public.accounts", "--into", "public.accounts_copy"))
	t.Logf("replay --into:\n%s", out)
	if got := tp.balances(t, "public.accounts_copy"); got != "1:90,2:110,3:50" {
		t.Errorf("the copy holds %s, want the transactions applied and forgotten (1:90,2:110,3:50)", got)
	}
	out = string(pgsinkOutput(t, tp.cfg, env, "replay", "--table", "public.accounts", "--rebuild", "--online"))
	t.Logf("replay --rebuild --online:\n%s", out)
	if got := tp.balances(t, "public.accounts"); got != "1:90,2:110,3:50" {
		t.Errorf("after the online rebuild the table holds %s, want 1:90,2:110,3:50", got)
	}
	tp.st.Exec(`BEGIN; UPDATE public.accounts SET balance = 80 WHERE id = 1; UPDATE public.accounts SET balance = 120 WHERE id = 2; COMMIT`)
	tp.waitBalances(t, "1:80,2:120,3:50", "a transfer after the rebuild applied")
	if code, _ := tp.p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}
