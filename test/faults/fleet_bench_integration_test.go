//go:build integration

package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkIntegrationFleet is issue 24's scale benchmark (make
// bench-fleet): o.tables source tables streamed by one Debezium connector,
// the hot one on a topic of o.hotPartitions partitions, into one pgsink
// instance with one routing rule and default settings (a static member
// name, so that a restart resumes without waiting for the session
// timeout). The snapshot is in Kafka before pgsink starts, so the drain is
// pgsink's own. It reports the instance's peak RSS (VmHWM), its most
// sessions on the target at once (pg_stat_activity), the most prepared
// statements they held (counted on the wire by stmtCounter, which every
// session goes through), the time from its start to the first batch
// committed, the drain rate, and the time to resume after kill -9 (the
// median of restartKills, as BenchmarkIntegrationResumeAfterKill).
func BenchmarkIntegrationFleet(b *testing.B) {
	o := fleetOptionsFromEnv(b, fleetOptions{tables: 500, hotPartitions: 100, rows: 20, hotRows: 20000})
	ctx := context.Background()
	setup := time.Now()
	f := newFleet(b, o, "")
	f.waitKafka(int64((o.tables-1)*o.rows+o.hotRows), 15*time.Minute)
	records, topics, partitions, err := f.kafkaRecords(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fleet: %d tables, %d topics, %d partitions, %d records in Kafka (snapshot taken in %s)",
		o.tables, topics, partitions, records, time.Since(setup).Round(time.Second))

	target, err := url.Parse(f.targetURL)
	if err != nil {
		b.Fatal(err)
	}
	counter := newStmtCounter(b, target.Host)
	relayed, err := counter.through(f.targetURL)
	if err != nil {
		b.Fatal(err)
	}
	start := func(name string) *proc {
		port := freePort(b)
		p := startProc(b, name, f.configPath, "TARGET_URL="+relayed, fmt.Sprintf("METRICS_PORT=%d", port), "PGSINK_INSTANCE_NAME=fleet-0")
		p.port = port
		return p
	}
	var peakSessions int
	var peakRSS int64
	observe := func(p *proc) {
		if n, err := f.sessions(ctx); err == nil {
			peakSessions = max(peakSessions, n)
		}
		if kb, err := vmHWM(p.cmd.Process.Pid); err == nil {
			peakRSS = max(peakRSS, kb)
		}
	}

	started := time.Now()
	p := start("fleet-0")
	defer func() { p.signal(9); <-p.done }()
	var firstApply time.Time
	deadline := time.Now().Add(30 * time.Minute)
	for {
		n, err := f.applied(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n > 0 && firstApply.IsZero() {
			firstApply = time.Now()
		}
		observe(p)
		if n >= records {
			break
		}
		if p.exited() || time.Now().After(deadline) {
			b.Fatalf("drain: %d of %d records applied; instance exited: %v\n%s", n, records, p.exited(), tail(p.Logs(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(started)
	observe(p)
	drainRSS := peakRSS
	toFirst := firstApply.Sub(started)
	rate := float64(records) / time.Since(firstApply).Seconds()
	drainStmts, _, _, _ := counter.held()
	b.Logf("drain: %d prepared statements held at its end", drainStmts)
	b.Logf("drain: %s", claimSpan(p.Logs(), started))
	b.Logf("drain: first batch committed %s after the start, %d records in %s (%.0f records/s from the first commit); peak RSS %d MiB, %d sessions",
		toFirst.Round(time.Millisecond), records, drained.Round(time.Millisecond), rate, drainRSS/1024, peakSessions)

	// Resume after kill -9: markers in the hot table (spread over its
	// partitions by key) and in as many cold tables.
	hot := o.hotRows
	var first, all []time.Duration
	for kill := 1; kill <= restartKills; kill++ {
		p.signal(9)
		<-p.done
		before, _, _, err := f.kafkaRecords(ctx)
		if err != nil {
			b.Fatal(err)
		}
		m := f.insertMarkers(ctx, kill, &hot)
		f.waitKafka(before+int64(m.want), time.Minute)
		restarted := time.Now()
		p = start(fmt.Sprintf("fleet-%d", kill))
		firstAt, err := applied(m, 3*time.Minute, func() {
			if p.exited() {
				b.Fatalf("restart %d: the instance exited: %s\n%s", kill, p.cmd.ProcessState, tail(p.Logs(), 30))
			}
		})
		if err != nil {
			b.Fatalf("restart %d: %v\n%s", kill, err, tail(p.Logs(), 30))
		}
		first, all = append(first, firstAt.Sub(restarted)), append(all, time.Since(restarted))
		observe(p)
		b.Logf("restart %d: first marker applied after %s, all %d after %s; %s", kill,
			first[kill-1].Round(time.Millisecond), m.want, all[kill-1].Round(time.Millisecond), claimSpan(p.Logs(), restarted))
	}
	_, stmtsPeak, stmtsPerSession, err := counter.held()
	if err != nil {
		b.Fatalf("counting prepared statements: %v", err)
	}
	b.Logf("prepared statements: at most %d held at once over all sessions, %d by one session", stmtsPeak, stmtsPerSession)
	b.ReportMetric(float64(drainRSS)/1024, "drain-rss-MiB")
	b.ReportMetric(float64(peakRSS)/1024, "peak-rss-MiB")
	b.ReportMetric(float64(peakSessions), "sessions")
	b.ReportMetric(float64(stmtsPeak), "stmts")
	b.ReportMetric(float64(stmtsPerSession), "stmts/session")
	b.ReportMetric(toFirst.Seconds(), "first-apply-s")
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(median(first).Seconds(), "resume-first-s")
	b.ReportMetric(median(all).Seconds(), "resume-all-s")
}

// insertMarkers writes restartMarkers rows into the hot table (new keys
// above *hot) and one into each of restartMarkers cold tables, and returns
// what applied polls to see them all in the target.
func (f *fleet) insertMarkers(ctx context.Context, kill int, hot *int) markers {
	f.tb.Helper()
	var hotIDs []int
	for range restartMarkers {
		*hot++
		hotIDs = append(hotIDs, *hot)
		f.st.Exec(`INSERT INTO public.`+fleetTable(0)+` VALUES ($1, 0, 'marker')`, *hot)
	}
	var sum []string
	var cold []int
	for i := range restartMarkers {
		table := 1 + (kill*restartMarkers+i)%(f.o.tables-1)
		id := 1_000_000 + kill
		cold = append(cold, id)
		f.st.Exec(`INSERT INTO public.`+fleetTable(table)+` VALUES ($1, 0, 'marker')`, id)
		sum = append(sum, fmt.Sprintf(`(SELECT count(*) FROM %s WHERE id = %d)`, pgx.Identifier{"public", fleetTable(table)}.Sanitize(), id))
	}
	query := `SELECT (SELECT count(*) FROM ` + pgx.Identifier{"public", fleetTable(0)}.Sanitize() + ` WHERE id = ANY($1))`
	for _, s := range sum {
		query += " + " + s
	}
	return markers{want: len(hotIDs) + len(cold), count: func() (int, error) {
		var n int
		err := f.target.QueryRow(ctx, query, hotIDs).Scan(&n)
		return n, err
	}}
}

// claimSpan says where a restart's time went, from the instance's
// timestamped log: when the consumer started, and when it claimed its first
// and its last partition, each after the process's start.
func claimSpan(logs string, started time.Time) string {
	var consumer, firstClaim, lastClaim time.Time
	claims := 0
	for _, line := range strings.Split(logs, "\n") {
		stamp, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(rest, "consumer started") && consumer.IsZero():
			consumer = at
		case strings.Contains(rest, "partition claimed"):
			if claims == 0 {
				firstClaim = at
			}
			lastClaim = at
			claims++
		}
	}
	if claims == 0 {
		return "no claim logged"
	}
	return fmt.Sprintf("consumer started at %s, %d claims from %s to %s", consumer.Sub(started).Round(time.Millisecond), claims,
		firstClaim.Sub(started).Round(time.Millisecond), lastClaim.Sub(started).Round(time.Millisecond))
}

// vmHWM reads a process's peak resident set size in KiB.
func vmHWM(pid int) (int64, error) {
	file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
