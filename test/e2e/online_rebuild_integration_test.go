//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// accountsN is how many accounts the online rebuild test keeps; ids above
// it are scratch rows, inserted and deleted so the ledgers have entries.
const accountsN = 20000

// accountsWorkload commits transactions on the source until ctx ends: each
// moves an amount between two accounts, bumps their seq, inserts a scratch
// row and deletes an older one.
func accountsWorkload(ctx context.Context, t *testing.T, url string) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(context.Background())
	for k := 1; ctx.Err() == nil; k++ {
		a, b := 1+rand.IntN(accountsN), 1+rand.IntN(accountsN)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE public.accounts SET seq = seq + 1, balance = balance + CASE WHEN id = $1 THEN -7 ELSE 7 END WHERE id IN ($1, $2)`, a, b); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO public.accounts VALUES ($1, 0, 0, 'scratch')`, accountsN+k); err != nil {
				return err
			}
			if k <= 3 {
				return nil
			}
			_, err := tx.Exec(ctx, `DELETE FROM public.accounts WHERE id = $1`, accountsN+k-3)
			return err
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("workload: %v", err)
			return
		}
		time.Sleep(5 * time.Millisecond) // a steady stream, not a flood, on a shared machine
	}
}

// pollAccounts reads the target every 10 ms until ctx ends. A consistent
// state is: every account there (count accountsN, ids 1..N), and no
// account's seq lower than in an earlier poll (sum of seq never falls:
// the table never goes back in time). It returns the number of polls and
// the violations.
func pollAccounts(ctx context.Context, url string) (polls int, violations []string) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, []string{err.Error()}
	}
	defer conn.Close(context.Background())
	var lastSeq int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return polls, violations
		case <-tick.C:
		}
		var n, lo, hi, seq int64
		err := conn.QueryRow(ctx, `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0), coalesce(sum(seq), 0)::bigint FROM public.accounts WHERE id <= $1`, accountsN).Scan(&n, &lo, &hi, &seq)
		if ctx.Err() != nil {
			return polls, violations
		}
		polls++
		switch {
		case err != nil:
			violations = append(violations, fmt.Sprintf("poll %d: %v", polls, err))
		case n != accountsN || lo != 1 || hi != accountsN:
			violations = append(violations, fmt.Sprintf("poll %d: %d accounts, ids %d..%d; want %d, 1..%d", polls, n, lo, hi, accountsN, accountsN))
		case seq < lastSeq:
			violations = append(violations, fmt.Sprintf("poll %d: sum of seq went back from %d to %d", polls, lastSeq, seq))
		}
		lastSeq = max(lastSeq, seq)
	}
}

// TestE2EOnlineRebuild rebuilds a table with `replay --rebuild --online`
// three times while a workload writes the source and a reader polls the
// target every 10 ms: once straight through, once killed (kill -9) during
// the fill and run again, once killed inside the swap transaction (a
// failpoint) and run again. The reader never sees a missing account nor a
// state older than one it saw; the target ends equal to the source, with no
// shadow, replaced table or fill positions left.
func TestE2EOnlineRebuild(t *testing.T) {
	waitsInParallel(t)
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.accounts (id integer PRIMARY KEY, seq bigint NOT NULL, balance bigint NOT NULL, note text)`)
	st.Exec(fmt.Sprintf(`INSERT INTO public.accounts SELECT i, 0, 1000, NULL FROM generate_series(1, %d) i`, accountsN))
	st.RegisterDebezium("accounts", map[string]string{"table.include.list": "public.accounts"})
	targetURL, target := targetWith(t, `CREATE TABLE public.accounts (id integer PRIMARY KEY, seq bigint NOT NULL, balance bigint NOT NULL, note text,
		_pgsink_commit_lsn bigint, _pgsink_lsn bigint, CHECK (balance > -1000000))`)
	yaml := tableConfig(st, st.TopicPrefix+".public.accounts", "public.accounts", "")
	p := startPgsink(t, yaml, "TARGET_URL="+targetURL)
	query := `SELECT id, seq, balance, note FROM public.accounts ORDER BY id`
	convergeTo(t, st, targetURL, query, "initial snapshot")

	workCtx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); accountsWorkload(workCtx, t, st.SourceURL) }()
	var polls int
	var violations []string
	go func() { defer wg.Done(); polls, violations = pollAccounts(workCtx, targetURL) }()
	defer func() { stopWork(); wg.Wait() }()

	// Small batches make the fill long enough to kill it in the middle.
	cfgPath := filepath.Join(t.TempDir(), "pgsink.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml+"apply:\n  batch:\n    max_records: 200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rebuild := func(env ...string) *exec.Cmd {
		cmd := exec.Command(binary, "replay", "--config", cfgPath, "--table", "public.accounts", "--rebuild", "--online", "--max-lag", "200")
		cmd.Env = append(append(os.Environ(), "TARGET_URL="+targetURL), env...)
		return cmd
	}
	mustRebuild := func(what string, resumes bool) {
		t.Helper()
		out, err := rebuild().CombinedOutput()
		if err != nil || !strings.Contains(string(out), "swapped the rebuilt table in") {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		if strings.Contains(string(out), "resuming the rebuild") != resumes {
			t.Fatalf("%s: resumed %v, want %v\n%s", what, !resumes, resumes, out)
		}
		t.Logf("%s:\n%s", what, out)
	}
	mustRebuild("online rebuild", false)

	// kill -9 in the middle of the fill: once its positions have moved.
	cmd := rebuild()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the fill applies its first batches", func() (bool, string) {
		var n int64
		err := target.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM pgsink.offsets WHERE group_id LIKE 'fill:%'`).Scan(&n)
		return err == nil && n >= 2000, fmt.Sprintf("fill positions sum %d (%v)", n, err)
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if strings.Contains(out.String(), "swapped") {
		t.Fatalf("the rebuild finished before it was killed: the kill proves nothing\n%s", out.String())
	}
	status := exec.Command(binary, "status", "--config", cfgPath, "--json")
	status.Env = append(os.Environ(), "TARGET_URL="+targetURL)
	statusOut, err := status.Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var report struct {
		Fills []struct {
			Table   string `json:"table"`
			Applied int64  `json:"applied"`
		} `json:"fills"`
	}
	if err := json.Unmarshal(statusOut, &report); err != nil || len(report.Fills) != 1 || report.Fills[0].Applied < 2000 ||
		report.Fills[0].Table != "public.accounts__pgsink_shadow" {
		t.Fatalf("status after the killed fill: %s (%v); want the shadow's fill with its progress", statusOut, err)
	}
	mustRebuild("online rebuild resumed after kill -9 in the fill", true)

	// kill -9 inside the swap transaction, before its COMMIT.
	killed, err := rebuild("PGSINK_FAILPOINTS=swap-before-commit:1").CombinedOutput()
	if err == nil || !strings.Contains(string(killed), "failpoint swap-before-commit") {
		t.Fatalf("the swap failpoint did not kill the rebuild: %v\n%s", err, killed)
	}
	mustRebuild("online rebuild resumed after kill -9 in the swap", true)

	// The workload stops; what it wrote since the last swap flows into the
	// swapped-in table.
	stopWork()
	wg.Wait()
	convergeTo(t, st, targetURL, query, "after three online rebuilds")
	if len(violations) > 0 {
		t.Fatalf("the reader saw %d inconsistent states in %d polls, first: %s", len(violations), polls, strings.Join(violations[:min(5, len(violations))], "; "))
	}
	if polls < 100 {
		t.Fatalf("only %d polls: the reader proves nothing", polls)
	}
	t.Logf("reader: %d polls, every one consistent", polls)
	var left int
	if err := target.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class WHERE relname LIKE 'accounts\_\_pgsink%' OR relname LIKE 'pgsink\_old\_%')
		+ (SELECT count(*) FROM pgsink.offsets WHERE group_id LIKE 'fill:%')`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("left behind: %d shadow or replaced tables and indexes, or fill positions (%v)", left, err)
	}
	// The swapped-in table has the definition and the names of the old.
	var def string
	if err := target.QueryRow(ctx, `SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = 'public.accounts'::regclass`).Scan(&def); err != nil ||
		def != "accounts_balance_check CHECK ((balance > '-1000000'::integer)), accounts_pkey PRIMARY KEY (id)" {
		t.Fatalf("constraints of the rebuilt table: %q (%v)", def, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
