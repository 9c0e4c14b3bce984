//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2EStatusStagingBound: `pgsink status` under apply.consistency:
// transaction shows the resolver's wait and the data partitions waiting at
// apply.transaction.max_staged_bytes. A transfer whose END never completes
// (it writes public.orders, which pgsink is not configured for) holds the
// resolver back: it waits at that END and publishes its wait, which status
// shows with the transaction and the collection short of its count
// (pgsink_transaction_resolver_wait_published is 1), while the partitions
// stage past their bound of 1 KiB. Transfers go on until the resolver stops
// past max_wait; the partitions then keep to their bound, and status shows
// each that waits there with what it staged ahead of the resolver's
// frontier.
func TestE2EStatusStagingBound(t *testing.T) {
	waitsInParallel(t)
	ctx := context.Background()
	port := freePort(t)
	tp := newTransferPipeline(t, "max_wait: 40s, max_staged_bytes: 1KiB", port)
	env := []string{"TARGET_URL=" + tp.targetURL}
	status := func() string { return string(pgsinkOutput(t, tp.cfg, env, "status")) }
	tp.stageUnapplied(t, 80, 120, 40)
	var out string
	eventually(t, 30*time.Second, "status shows the resolver's wait", func() (bool, string) {
		out = status()
		return strings.Contains(out, "for events not all staged: transaction ") && strings.Contains(out, "(public.orders: 0 of 1)"), out
	})
	t.Logf("status while the resolver waits:\n%s", out)
	// Status reads the wait from its row, which the resolver commits before
	// it sets the gauge: the gauge is waited for, not expected at once.
	eventually(t, 30*time.Second, "pgsink_transaction_resolver_wait_published 1 while the resolver's wait is published", func() (bool, string) {
		v, ok := metricValue(port, "pgsink_transaction_resolver_wait_published")
		return ok && v == 1, fmt.Sprintf("%v (exported %v)", v, ok)
	})
	if strings.Contains(out, "waiting at the staging bound:") {
		t.Errorf("status shows a partition waiting at its bound while the resolver's published wait lets it stage:\n%s", out)
	}

	src := tp.st.Source()
	amount := 0
	eventually(t, 3*time.Minute, "status shows partitions waiting at the staging bound and the resolver stopped", func() (bool, string) {
		amount++
		tx, err := src.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`UPDATE public.accounts SET balance = balance - $1 WHERE id = 1`, `UPDATE public.accounts SET balance = balance + $1 WHERE id = 2`} {
			if _, err := tx.Exec(ctx, q, amount); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		out = status()
		return strings.Contains(out, "waiting at the staging bound: ") && strings.Contains(out, "stopped (see the stopped partitions below)"), out
	})
	t.Logf("status with the resolver stopped:\n%s", out)
	line := regexp.MustCompile(`\.public\.accounts\[\d\]: waiting at the staging bound: [0-9.]+ KiB staged ahead of the resolver's frontier \(offset \d+\)`)
	if !line.MatchString(out) {
		t.Errorf("status:\n%s\nwant a partition line matching %s", out, line)
	}
	if v, ok := metricValue(port, "pgsink_transaction_resolver_wait_published"); !ok || v != 0 {
		t.Errorf("pgsink_transaction_resolver_wait_published = %v (exported %v) with the resolver stopped, want 0", v, ok)
	}
	var report statusReport
	if err := json.Unmarshal(pgsinkOutput(t, tp.cfg, env, "status", "--json"), &report); err != nil {
		t.Fatal(err)
	}
	waiting := 0
	for _, p := range report.Partitions {
		if p.AtStagingBound {
			waiting++
			if p.StagedAheadBytes < 1024 || p.ResolverFrontier == nil || p.Lag == nil || *p.Lag <= 0 {
				t.Errorf("%s[%d] waits at its bound with %d bytes staged ahead (want 1 KiB at least), frontier %v, lag %v", p.Topic, p.Partition, p.StagedAheadBytes, p.ResolverFrontier, p.Lag)
			}
		}
	}
	if waiting == 0 || report.Resolver == nil || !report.Resolver.Stopped || report.Resolver.WaitingAt != nil {
		t.Errorf("status --json: %d partitions waiting at the bound, resolver %+v; want some, and the resolver stopped with no wait published", waiting, report.Resolver)
	}
	if code, _ := tp.p.stop(30 * time.Second); code != 0 {
		t.Errorf("pgsink exited with %d", code)
	}
}

// statusReport is the part of `pgsink status --json` the test reads.
type statusReport struct {
	Partitions []struct {
		Topic            string `json:"topic"`
		Partition        int32  `json:"partition"`
		Lag              *int64 `json:"lag"`
		StagedAheadBytes int64  `json:"staged_ahead_bytes"`
		ResolverFrontier *int64 `json:"resolver_frontier"`
		AtStagingBound   bool   `json:"waiting_at_staging_bound"`
	} `json:"partitions"`
	Resolver *struct {
		Stopped   bool   `json:"stopped"`
		WaitingAt *int64 `json:"waiting_at"`
	} `json:"resolver"`
}
