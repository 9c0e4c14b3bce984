//go:build integration

package faults

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The source tables verify --repair needs (docs/recovery.md): Debezium's
// signal table, and a heartbeat table a heartbeat action query writes, so
// the slot moves whatever the workload does.
const verifySourceDDL = `CREATE TABLE public.debezium_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048));
CREATE TABLE public.debezium_heartbeat (id int PRIMARY KEY, at timestamptz);`

const verifyTables = "public.debezium_signal,public.debezium_heartbeat"

var verifyOverrides = map[string]string{
	"signal.data.collection": "public.debezium_signal",
	"heartbeat.interval.ms":  "500",
	"heartbeat.action.query": "INSERT INTO public.debezium_heartbeat VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = now()",
}

// Scenario 14: while the workload runs, the target is corrupted by hand:
// rows updated, rows deleted, keys the source never had inserted. `pgsink
// verify` must report drift, `verify --repair` heal it through Debezium
// (an incremental snapshot of the differing keys) and the sink's delete path
// (the extra keys), and once the workload stops, a last verify must find the
// target clean and every invariant hold: the repair's rows went through the
// version guard (V), its deletes left no key the source lacks (R), and C.
// Drift the load creates from the corruption after the repair looked (a key
// move carrying a corrupted row's TOAST value) takes another repair once the
// load stopped.
func TestFaults14VerifyRepair(t *testing.T) {
	long(t)
	s := newScenario(t, "14 hand-corrupted target healed by verify --repair", scenarioOptions{verify: true})
	s.result.FaultKinds = "target rows UPDATEd, DELETEd and keys INSERTed by hand under load; pgsink verify --repair"
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	time.Sleep(5 * time.Second) // some load before the corruption, not synchronisation
	for _, sql := range []string{
		`UPDATE public.accounts SET balance = balance + 1000000 WHERE id % 97 = 0`,
		`DELETE FROM public.accounts WHERE id % 89 = 0`,
		`INSERT INTO public.accounts (id, seq, balance, updated_at) SELECT 10000000 + i, 0, 0, now() FROM generate_series(1, 50) i`,
	} {
		s.exec(sql)
		s.result.Faults++
	}
	env := []string{"TARGET_URL=" + s.targetURL, "METRICS_PORT=0"}
	verify := func(args ...string) (int, string) {
		out, err := runCommand(5*time.Minute, env, append([]string{"verify", "--config", s.configPath, "--table", "public.accounts"}, args...)...)
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, out
		case errors.As(err, &exit):
			return exit.ExitCode(), out
		}
		t.Fatalf("pgsink verify: %v\n%s", err, out)
		return 0, ""
	}
	code, out := verify("--max-keys", "1000")
	if code != 1 || !strings.Contains(out, "extra   (10000001)") {
		t.Fatalf("verify of the corrupted target under load: exit %d; want 1 with the extra keys among the drift:\n%s", code, out)
	}
	t.Logf("verify before the repair:\n%s", out)
	code, out = verify("--repair")
	if code != 0 {
		t.Errorf("verify --repair under load: exit %d, want 0 (healed):\n%s", code, out)
	}
	t.Logf("verify --repair:\n%s", out)
	s.load.halt()
	// A key move of the load copies the old key's unchanged TOAST value
	// from the target's row (Debezium does not send it): where the hand
	// corruption had deleted that row, or the repair's re-read of the old
	// key came after the move, the new key gets NULL, and pgsink counts it
	// (pgsink_unresolved_unchanged_rows_total). That drift appears after
	// the repair looked, so the repair is run again, as an operator would
	// on that counter, until the target converges: at most twice more.
	quiet := s.waitQuiet(time.Minute)
	for round := 2; !quiet && round <= 3; round++ {
		code, out = verify("--repair")
		t.Logf("verify --repair, round %d, the load stopped (exit %d):\n%s", round, code, out)
		quiet = s.waitQuiet(2 * time.Minute)
	}
	if code, out = verify(); code != 0 {
		t.Errorf("verify after the repair and the load: exit %d, want 0:\n%s", code, out)
	}
	s.stopAll()
	s.checkAll(quiet, 0)
}
