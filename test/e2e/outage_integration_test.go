//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// outageRebalance is the setup of the tests of a rebalance during a target
// outage: pgsink applies a first topic its topic_pattern matches, its
// target reached through a proxy (stacktest.Proxy) to the stack's
// PostgreSQL; then the proxy goes down (connections refused, pgsink's
// open ones lost; up again at the test's end if the test did not bring it
// up), a second matching topic is created and written, and the rescan
// (every 30 s) subscribes to it, so that the rebalance that follows claims
// its partition with the target down. It returns once that rebalance
// began.
type outageRebalance struct {
	p         *process
	rows      func(table string) (bool, string)
	stoppedAt time.Time
	// rebalanced is when the new topic's assignment began: its claim
	// waits for the target from then on.
	rebalanced time.Time
	// start brings the target back.
	start func()
	// awaiting reads pgsink_partitions_awaiting_claim.
	awaiting func() float64
}

func newOutageRebalance(t *testing.T) *outageRebalance {
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
	port := freePort(t)
	cfg = strings.Replace(cfg, "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := stacktest.NewProxy(t, u.Host)
	through, err := proxy.URL(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	o := &outageRebalance{p: startPgsink(t, cfg, "TARGET_URL="+through)}
	o.awaiting = func() float64 { v, _ := metricValue(port, "pgsink_partitions_awaiting_claim"); return v }
	assigned := func() float64 { v, _ := metricValue(port, `pgsink_rebalances_total{kind="assigned"}`); return v }
	o.rows = func(table string) (bool, string) {
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
	eventually(t, 90*time.Second, "the first topic applied", func() (bool, string) { return o.rows("outage_a") })

	proxy.Down()
	o.stoppedAt = time.Now()
	o.start = func() {
		if err := proxy.Up(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(o.start)
	before := assigned()
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, second, 1); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		produce(t, st.Env.KafkaBootstrap, second, []byte(e.Key), []byte(e.Value))
	}
	// The metric counts the assignment as it begins: whether its claim
	// goes through or awaits the target.
	eventually(t, 60*time.Second, "the new topic assigned", func() (bool, string) {
		return assigned() > before, fmt.Sprintf("%v assignments", assigned())
	})
	o.rebalanced = time.Now()
	return o
}

// TestE2ERebalanceDuringATargetOutage keeps the target down longer than
// the minute after which claims used to give up and stop the instance;
// the process must still run, then claim and apply the new topic once the
// target is back, and stop cleanly.
func TestE2ERebalanceDuringATargetOutage(t *testing.T) {
	waitsInParallel(t)
	o := newOutageRebalance(t)
	// Longer than claimRetryFor (a minute), after which a claim used to
	// give up and stop the instance.
	for time.Since(o.rebalanced) < 75*time.Second {
		select {
		case err := <-o.p.done:
			t.Fatalf("pgsink exited during the outage (%v)", err)
		case <-time.After(time.Second):
		}
	}
	o.start()
	t.Logf("target down for %s, %s of it after the new topic's assignment began", time.Since(o.stoppedAt).Round(time.Second), time.Since(o.rebalanced).Round(time.Second))
	eventually(t, 90*time.Second, "the new topic applied once the target is back", func() (bool, string) { return o.rows("outage_b") })
	logs := o.p.Logs()
	if code, _ := o.p.stop(30 * time.Second); code != 0 {
		t.Fatalf("pgsink exited %d after SIGTERM, want 0", code)
	}
	if !strings.Contains(logs, "target PostgreSQL unavailable") {
		t.Error("no 'target PostgreSQL unavailable' warning during the outage")
	}
	if !strings.Contains(logs, "partition claimed once the target was back") {
		t.Error("the new topic's partition was not claimed from the poll loop once the target was back")
	}
	if strings.Contains(logs, "stopping the instance") {
		t.Error("the instance was told to stop during the outage")
	}
}

// TestE2EShutdownDuringAClaimThatWaitsForTheTarget: SIGTERM while a
// rebalance's partition awaits its claim (the target down, the partition
// assigned paused) stops the instance at once: the process exits 0,
// within seconds, without claiming the partition or calling the stop a
// failure.
func TestE2EShutdownDuringAClaimThatWaitsForTheTarget(t *testing.T) {
	waitsInParallel(t)
	o := newOutageRebalance(t)
	// The assignment's first claim, in the rebalance, has met the target
	// down: the partition awaits its claim in the poll loop.
	eventually(t, 30*time.Second, "the new topic's partition awaits its claim", func() (bool, string) {
		return o.awaiting() == 1, fmt.Sprintf("pgsink_partitions_awaiting_claim %v", o.awaiting())
	})
	code, took := o.p.stop(30 * time.Second)
	logs := o.p.Logs()
	if code != 0 {
		t.Errorf("pgsink exited %d after SIGTERM during the claim's wait, want 0", code)
	}
	if took > 15*time.Second {
		t.Errorf("took %s to exit after SIGTERM: the claim's wait held the shutdown", took)
	}
	if !strings.Contains(logs, "partition not claimed yet: the target is unavailable") {
		t.Error("no 'partition not claimed yet' warning: the claim did not meet the outage")
	}
	if strings.Contains(logs, "partition claimed once the target was back") {
		t.Error("the partition was claimed although the target stayed down")
	}
	if strings.Contains(logs, "stopping the instance") {
		t.Error("the shutdown was taken for a failure ('stopping the instance')")
	}
	t.Logf("exited %d in %s", code, took.Round(time.Millisecond))
}
