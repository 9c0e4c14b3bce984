//go:build integration

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2EReplayTransactionTopic: `pgsink replay --topic <transaction topic>`
// under apply.consistency: transaction moves the resolver back; it reads
// the ENDs again and passes over those of transactions it applied: nothing
// is applied twice, the resolver comes back to where it stood and applies
// the transactions after. Refused: moving the resolver forward (ENDs
// skipped), and back to ENDs older than retention.tombstones (their
// transactions may no longer be recorded as applied). Before, the topic was
// refused as one no table is configured for.
func TestE2EReplayTransactionTopic(t *testing.T) {
	ctx := context.Background()
	tp := newTransferPipeline(t, "", 0)
	tp.st.Exec(`BEGIN; UPDATE public.accounts SET balance = 90 WHERE id = 1; UPDATE public.accounts SET balance = 110 WHERE id = 2; COMMIT`)
	tp.waitBalances(t, "1:90,2:110,3:50", "the transfer applied")
	// The resolver stands after the last END (the high watermark).
	resolver := func() (position, resolved int64) {
		t.Helper()
		if err := tp.target.QueryRow(ctx, `SELECT (SELECT next_offset FROM pgsink.offsets WHERE topic = $1), (SELECT count(*) FROM pgsink.tx_resolved)`,
			tp.txTopic).Scan(&position, &resolved); err != nil {
			t.Fatal(err)
		}
		return position, resolved
	}
	var position, resolved int64
	eventually(t, 30*time.Second, "the resolver at the end of the transaction topic", func() (bool, string) {
		position, resolved = resolver()
		// BEGIN and END of each of the two transactions.
		return position == 4 && resolved == 2, fmt.Sprintf("at %d, %d transactions recorded applied", position, resolved)
	})
	env := []string{"TARGET_URL=" + tp.targetURL}
	replay := func(config string, args ...string) (string, error) {
		return pgsinkRun(t, config, env, "replay", append([]string{"--topic", tp.txTopic}, args...)...)
	}

	out, err := replay(tp.cfg, "--from", "earliest", "--wait", "--wait-timeout", "2m")
	t.Logf("replay of the transaction topic:\n%s", out)
	if err != nil || !strings.Contains(out, "rewound the resolver") {
		t.Fatalf("replay --topic %s --from earliest: %v\n%s", tp.txTopic, err, out)
	}
	if p, r := resolver(); p != position || r != resolved {
		t.Errorf("after the replay the resolver stands at %d with %d transactions recorded applied, want %d and %d", p, r, position, resolved)
	}
	if got := tp.balances(t, "public.accounts"); got != "1:90,2:110,3:50" {
		t.Errorf("after the replay the table holds %s, want 1:90,2:110,3:50", got)
	}
	tp.st.Exec(`BEGIN; UPDATE public.accounts SET balance = 80 WHERE id = 1; UPDATE public.accounts SET balance = 120 WHERE id = 2; COMMIT`)
	tp.waitBalances(t, "1:80,2:120,3:50", "a transfer after the replay applied")

	// Back to ENDs older than the retention: refused, the position unmoved.
	time.Sleep(2 * time.Second)
	out, err = replay(tp.cfg+"retention:\n  tombstones: 1s\n", "--from", "earliest")
	if err == nil || !strings.Contains(out, "more than retention.tombstones (1s) ago") {
		t.Errorf("replay --from earliest with retention.tombstones 1s: %v, want a refusal naming the retention:\n%s", err, out)
	}
	// Forward, past ENDs the resolver waits at: refused.
	tp.stageUnapplied(t, 70, 130, 40)
	eventually(t, 30*time.Second, "the resolver waiting at the incomplete END", func() (bool, string) {
		out, err = replay(tp.cfg, "--from", "offset:8")
		return err != nil && strings.Contains(out, "past the resolver's position"), out
	})
	if p, _ := resolver(); p >= 8 {
		t.Errorf("the resolver at %d after a refused replay, want it before the incomplete END", p)
	}
	// A group whose resolver never claimed the topic would start at
	// --from: past the topic's earliest offset, the ENDs before it would
	// be skipped. Refused.
	unclaimed := regexp.MustCompile(`(?m)^(  group\.id: \S+)$`).ReplaceAllString(tp.cfg, "${1}-unclaimed")
	if unclaimed == tp.cfg {
		t.Fatalf("no group.id line to change in the configuration:\n%s", tp.cfg)
	}
	out, err = replay(unclaimed, "--from", "offset:2")
	if err == nil || !strings.Contains(out, "no resolver has claimed the transaction topic yet") {
		t.Errorf("replay --from offset:2 for a group whose resolver never ran: %v, want a refusal (review of txinto):\n%s", err, out)
	}
	if code, _ := tp.p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}
