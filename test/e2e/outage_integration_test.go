//go:build integration

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2ERebalanceDuringATargetOutage stops the target PostgreSQL (pg_ctl
// stop -m fast), then makes the group assign this instance a partition —
// a new topic its topic_pattern matches, found at the next rescan — so
// that the claim meets the outage inside the rebalance. The outage lasts
// longer than the minute after which claims used to give up and stop the
// instance; the process must still run, then claim and apply the new
// topic once PostgreSQL is back, and stop cleanly. It takes the stack's
// PostgreSQL down: run it alone.
func TestE2ERebalanceDuringATargetOutage(t *testing.T) {
	st := stacktest.New(t)
	ctx := context.Background()
	targetURL := stacktest.OwnedTargetDatabase(t)
	first, second := st.TopicPrefix+".outage.a", st.TopicPrefix+".outage.b"
	events := recordedAllTypes(t, 2)
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, first, 1); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		produce(t, st.Env.KafkaBootstrap, first, []byte(e.Key), []byte(e.Value))
	}
	cfg := tablesConfig(st, fmt.Sprintf("  - topic_pattern: '%s\\.outage\\.(?P<t>[ab])'\n    target: 'public.outage_${t}'\n    schema: { create: true }\n",
		regexp.QuoteMeta(st.TopicPrefix))) + "apply:\n  batch: { max_wait: 20ms }\n"
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	rows := func(table string) (bool, string) {
		conn, err := pgx.Connect(ctx, targetURL)
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.`+table).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == len(events), fmt.Sprintf("%d rows", n)
	}
	eventually(t, 90*time.Second, "the first topic applied", func() (bool, string) { return rows("outage_a") })

	if out, err := stacktest.PgCtl(ctx, "stop", "-m", "fast"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
	running := true
	t.Cleanup(func() {
		if !running {
			return
		}
		if out, err := stacktest.PgCtl(context.Background(), "start"); err != nil {
			t.Errorf("pg_ctl start: %v\n%s", err, out)
		}
	})
	stoppedAt := time.Now()
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, second, 1); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		produce(t, st.Env.KafkaBootstrap, second, []byte(e.Key), []byte(e.Value))
	}
	// The rescan (every 30 s) subscribes to the new topic; the rebalance
	// that follows claims its partition, with PostgreSQL down.
	eventually(t, 60*time.Second, "the new topic subscribed", func() (bool, string) {
		return strings.Contains(p.Logs(), "subscription changed"), "not yet"
	})
	subscribed := time.Now()
	// Longer than claimRetryFor (a minute), after which a claim used to
	// give up and stop the instance.
	for time.Since(subscribed) < 75*time.Second {
		select {
		case err := <-p.done:
			t.Fatalf("pgsink exited during the outage (%v)", err)
		case <-time.After(time.Second):
		}
	}
	if out, err := stacktest.PgCtl(ctx, "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	running = false
	t.Logf("PostgreSQL down for %s, %s of it after the new topic's subscription", time.Since(stoppedAt).Round(time.Second), time.Since(subscribed).Round(time.Second))
	eventually(t, 90*time.Second, "the new topic applied once PostgreSQL is back", func() (bool, string) { return rows("outage_b") })
	logs := p.Logs()
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(logs, "target PostgreSQL unavailable") {
		t.Error("no 'target PostgreSQL unavailable' warning during the outage")
	}
	if strings.Contains(logs, "stopping the instance") {
		t.Error("the instance was told to stop during the outage")
	}
}
