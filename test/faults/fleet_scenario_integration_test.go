//go:build integration

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scenario 15 (issue 24, point 5): two instances share the fleet — hundreds
// of tables through one connector and one routing rule, the hot one on a
// topic of many partitions — while a workload writes across the tables; a
// third instance joins and leaves again, then one of the two is killed with
// -9 and restarted. Every table must end equal to its source, each record
// applied exactly once, no position ahead of its data.
func TestFaults15FleetRebalance(t *testing.T) {
	long(t)
	o := fleetOptionsFromEnv(t, fleetOptions{tables: 500, hotPartitions: 100, rows: 10, hotRows: 2000})
	f := newFleet(t, o, "  session.timeout.ms: 10000\n  heartbeat.interval.ms: 1000\n")
	name := fmt.Sprintf("15 fleet: %d tables, 2 instances, rebalance under load", o.tables)
	s := &scenario{t: t, st: f.st, name: name, targetURL: f.targetURL, target: f.target, configPath: f.configPath,
		started: time.Now(), result: &result{Scenario: name, Started: time.Now(), FaultKinds: "instance joins, leaves (SIGTERM), SIGKILL + restart"}}
	t.Cleanup(s.killAll)
	s.exec(offsetsTrigger)
	s.exec(strings.SplitN(versionTrigger, "CREATE TRIGGER", 2)[0])
	var triggers strings.Builder
	for i := range o.tables {
		fmt.Fprintf(&triggers, "CREATE TRIGGER faults_version_guard BEFORE UPDATE ON public.%s FOR EACH ROW EXECUTE FUNCTION public.faults_version_guard();\n", fleetTable(i))
	}
	s.exec(triggers.String())
	partitions := o.tables - 1 + o.hotPartitions
	f.waitKafka(int64((o.tables-1)*o.rows+o.hotRows), 15*time.Minute)

	load := newFleetLoad(t, f)
	s.start("a")
	s.start("b")
	s.waitOwned(partitions, 3*time.Minute)
	load.run(2 * time.Millisecond)
	time.Sleep(10 * time.Second)

	c := s.start("c") // joins: the group moves partitions to it under load
	s.waitOwned(partitions, 3*time.Minute)
	s.result.Faults++
	time.Sleep(5 * time.Second)
	s.scrape(c)
	c.stop(time.Minute) // leaves: its partitions move back
	s.result.Faults++
	s.waitOwned(partitions, 3*time.Minute)
	time.Sleep(5 * time.Second)

	b := s.procs[1]
	s.scrape(b)
	b.signal(9)
	<-b.done
	s.result.Faults++
	time.Sleep(2 * time.Second)
	s.start("b2")
	s.waitOwned(partitions, 3*time.Minute)
	time.Sleep(5 * time.Second)
	load.halt()

	quiet := f.waitEqual(5*time.Minute, s)
	s.stopAll()
	s.result.Events = load.events + (o.tables-1)*o.rows + o.hotRows
	s.checkFleet(f, quiet)
}

// fleetLoad writes the fleet's tables: small transactions over one to
// three random tables, each an update (seq + 1), an insert or a delete.
type fleetLoad struct {
	t      *testing.T
	f      *fleet
	rng    *rand.Rand
	keys   [][]int // live keys per table
	next   []int   // next new key per table
	events int
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
}

func newFleetLoad(t *testing.T, f *fleet) *fleetLoad {
	l := &fleetLoad{t: t, f: f, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))}
	for i := range f.o.tables {
		n := f.o.rows
		if i == 0 {
			n = f.o.hotRows
		}
		keys := make([]int, n)
		for k := range keys {
			keys[k] = k + 1
		}
		l.keys = append(l.keys, keys)
		l.next = append(l.next, n+1)
	}
	return l
}

func (l *fleetLoad) run(pause time.Duration) {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.done)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, l.f.st.SourceURL)
		if err != nil {
			l.t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(pause):
			}
			if err := l.transaction(ctx, conn); err != nil {
				l.t.Errorf("fleet workload: %v", err)
				return
			}
		}
	}()
}

func (l *fleetLoad) transaction(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	changes := 1 + l.rng.IntN(3)
	for range changes {
		// A third of the changes hit the hot table.
		table := 0
		if l.rng.IntN(3) > 0 {
			table = 1 + l.rng.IntN(l.f.o.tables-1)
		}
		name := pgx.Identifier{"public", fleetTable(table)}.Sanitize()
		keys := l.keys[table]
		switch r := l.rng.IntN(10); {
		case r < 2 || len(keys) == 0:
			id := l.next[table]
			l.next[table]++
			if _, err := tx.Exec(ctx, `INSERT INTO `+name+` VALUES ($1, 0, 'new')`, id); err != nil {
				return err
			}
			l.keys[table] = append(keys, id)
		case r < 3:
			i := l.rng.IntN(len(keys))
			if _, err := tx.Exec(ctx, `DELETE FROM `+name+` WHERE id = $1`, keys[i]); err != nil {
				return err
			}
			keys[i] = keys[len(keys)-1]
			l.keys[table] = keys[:len(keys)-1]
		default:
			if _, err := tx.Exec(ctx, `UPDATE `+name+` SET seq = seq + 1, note = 'u' || (seq + 1) WHERE id = $1`, keys[l.rng.IntN(len(keys))]); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	l.events += changes
	l.mu.Unlock()
	return nil
}

func (l *fleetLoad) halt() {
	close(l.stop)
	<-l.done
}

// tableSums returns each fleet table's row count and md5 of its rows, the
// version columns aside.
func (f *fleet) tableSums(ctx context.Context, conn *pgx.Conn) (map[string]string, int, error) {
	var q strings.Builder
	for i := range f.o.tables {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, `SELECT '%s', count(*), coalesce(md5(string_agg(id || '/' || seq || '/' || note, ',' ORDER BY id)), '') FROM %s`,
			fleetTable(i), pgx.Identifier{"public", fleetTable(i)}.Sanitize())
	}
	rows, _ := conn.Query(ctx, q.String())
	sums := map[string]string{}
	total := 0
	var table, sum string
	var n int
	_, err := pgx.ForEachRow(rows, []any{&table, &n, &sum}, func() error {
		sums[table] = fmt.Sprintf("%d rows, md5 %s", n, sum)
		total += n
		return nil
	})
	return sums, total, err
}

// tableDiff lists the tables whose sums differ, at most five of them.
func tableDiff(src, dst map[string]string) (int, string) {
	var diffs []string
	for table, a := range src {
		if b := dst[table]; b != a {
			diffs = append(diffs, fmt.Sprintf("%s: source %s, target %s", table, a, b))
		}
	}
	n := len(diffs)
	if n > 5 {
		diffs = diffs[:5]
	}
	return n, strings.Join(diffs, "; ")
}

// waitEqual waits until every table of the target equals its source.
func (f *fleet) waitEqual(timeout time.Duration, s *scenario) bool {
	ctx := context.Background()
	src := f.st.Source()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		a, _, err1 := f.tableSums(ctx, src)
		b, _, err2 := f.tableSums(ctx, f.target)
		n, diff := tableDiff(a, b)
		if err1 == nil && err2 == nil && n == 0 {
			return true
		}
		last = fmt.Sprintf("%d tables differ: %s %v %v", n, diff, err1, err2)
		if len(s.live()) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	f.tb.Logf("not equal within %s: %s", timeout, last)
	return false
}

// checkFleet runs the invariant checks over every table and topic of the
// fleet and records them (O, the outbox, does not apply).
func (s *scenario) checkFleet(f *fleet, quiet bool) {
	ctx := context.Background()
	r := s.result
	r.Checks = map[string]verdict{}
	r.Checks["C"] = s.checkFleetC(ctx, f, quiet)
	r.Checks["M"] = s.checkM(ctx)
	r.Checks["U"] = s.checkFleetU(ctx, f)
	r.Checks["V"] = s.checkFleetV(ctx, f)
	r.Checks["DL"] = s.checkDL(ctx, 0)
	r.Checks["R"] = s.checkFleetR(ctx, f)
	stale, _, conflicts, lower := s.staleSkipped()
	bound := ""
	if lower {
		bound = "≥"
	}
	r.Stale = fmt.Sprintf("%s%d", bound, stale)
	r.InsertConflicts = fmt.Sprintf("%s%d", bound, conflicts)
	r.Duration = time.Since(r.Started)
	recordResult(r)
	for _, name := range checkOrder {
		v, ok := r.Checks[name]
		switch {
		case !ok:
		case !v.OK:
			s.t.Errorf("%s: invariant %s FAILED: %s", s.name, name, v.Detail)
		default:
			s.t.Logf("%s: invariant %s ok: %s", s.name, name, v.Detail)
		}
	}
}

func (s *scenario) checkFleetC(ctx context.Context, f *fleet, quiet bool) verdict {
	a, rows, err := f.tableSums(ctx, f.st.Source())
	if err != nil {
		return fail("source: %v", err)
	}
	b, _, err := f.tableSums(ctx, f.target)
	if err != nil {
		return fail("target: %v", err)
	}
	if n, diff := tableDiff(a, b); n > 0 {
		return fail("%d of %d tables differ (quiet: %v): %s", n, len(a), quiet, diff)
	}
	return pass(fmt.Sprintf("%d tables, %d rows, each table's md5 equal", len(a), rows))
}

// checkFleetU: no unexpected exit, no audit violation, and in every
// partition of every topic the offsets below the stored position are
// audited exactly once (the connector sends no tombstones) and none at or
// past it.
func (s *scenario) checkFleetU(ctx context.Context, f *fleet) verdict {
	problems := s.processProblems()
	rows, _ := s.target.Query(ctx, `SELECT o.topic, o.partition, o.next_offset,
		  (SELECT count(*) FROM pgsink.apply_audit a WHERE a.topic = o.topic AND a.partition = o.partition AND a."offset" < o.next_offset),
		  (SELECT count(*) FROM pgsink.apply_audit a WHERE a.topic = o.topic AND a.partition = o.partition AND a."offset" >= o.next_offset)
		FROM pgsink.offsets o WHERE o.group_id = $1`, f.st.ID)
	var topic string
	var partition int32
	var next, below, above, audited int64
	positions := 0
	if _, err := pgx.ForEachRow(rows, []any{&topic, &partition, &next, &below, &above}, func() error {
		positions++
		audited += below
		if above > 0 {
			problems = append(problems, fmt.Sprintf("%s[%d]: %d audited offsets at or past the stored position %d (I1)", topic, partition, above, next))
		}
		if below != next {
			problems = append(problems, fmt.Sprintf("%s[%d]: %d audited offsets below position %d: a gap or a repeat", topic, partition, below, next))
		}
		return nil
	}); err != nil {
		return fail("audit query: %v", err)
	}
	ends, err := f.topicEnds(ctx)
	if err != nil {
		return fail("topic ends: %v", err)
	}
	var end int64
	for _, e := range ends {
		end += e
	}
	if audited != end || positions != len(ends) {
		problems = append(problems, fmt.Sprintf("%d records audited at %d positions; the topics hold %d records in %d partitions", audited, positions, end, len(ends)))
	}
	s.result.Applied = int(audited)
	if len(problems) > 0 {
		if len(problems) > 8 {
			problems = append(problems[:8], fmt.Sprintf("and %d more", len(problems)-8))
		}
		return fail("%s", strings.Join(problems, "; "))
	}
	return pass(fmt.Sprintf("%d records audited once each over %d partitions, every one up to its topic's end", audited, positions))
}

// checkFleetV: the version trigger of every table never fired, and every
// target row carries a version.
func (s *scenario) checkFleetV(ctx context.Context, f *fleet) verdict {
	if who := s.logsContaining(markV); len(who) > 0 {
		return fail("version trigger raised in %v", who)
	}
	if dl := s.deadLettersMatching(ctx, markV); dl > 0 {
		return fail("%d dead letters carry the version trigger's error", dl)
	}
	var q strings.Builder
	q.WriteString("SELECT 0")
	for i := range f.o.tables {
		fmt.Fprintf(&q, " + (SELECT count(*) FROM %s WHERE _pgsink_commit_lsn IS NULL OR _pgsink_lsn IS NULL)", pgx.Identifier{"public", fleetTable(i)}.Sanitize())
	}
	var missing int
	if err := s.target.QueryRow(ctx, q.String()).Scan(&missing); err != nil {
		return fail("%v", err)
	}
	if missing > 0 {
		return fail("%d rows without a version", missing)
	}
	return pass(fmt.Sprintf("no version went backwards in %d tables", f.o.tables))
}

// checkFleetR: per table, no key the source lacks (resurrected) and none
// missing.
func (s *scenario) checkFleetR(ctx context.Context, f *fleet) verdict {
	var q strings.Builder
	for i := range f.o.tables {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, `SELECT '%s/' || id FROM %s`, fleetTable(i), pgx.Identifier{"public", fleetTable(i)}.Sanitize())
	}
	a, err := keySet[string](ctx, f.st.Source(), q.String())
	if err != nil {
		return fail("source: %v", err)
	}
	b, err := keySet[string](ctx, s.target, q.String())
	if err != nil {
		return fail("target: %v", err)
	}
	extra, missing := setDiff(a, b)
	if len(extra) > 0 || len(missing) > 0 {
		return fail("%d keys resurrected (e.g. %v), %d missing (e.g. %v)", len(extra), first(extra, 5), len(missing), first(missing, 5))
	}
	return pass(fmt.Sprintf("%d keys over %d tables, none resurrected", len(a), f.o.tables))
}
