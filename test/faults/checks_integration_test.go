//go:build integration

package faults

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// verdict is one invariant's outcome.
type verdict struct {
	OK     bool
	Detail string
}

func pass(detail string) verdict { return verdict{OK: true, Detail: detail} }
func fail(format string, args ...any) verdict {
	return verdict{OK: false, Detail: fmt.Sprintf(format, args...)}
}

// checkAll runs every invariant check once the pipeline is quiet (or the
// wait for it gave up) and records the verdicts. injected is the number of
// poison records the scenario produced; quiet says whether C converged.
func (s *scenario) checkAll(quiet bool, injected int) {
	s.evaluate(quiet, injected)
	for _, name := range s.checked() {
		v := s.result.Checks[name]
		if !v.OK {
			s.t.Errorf("%s: invariant %s FAILED: %s", s.name, name, v.Detail)
		} else {
			s.t.Logf("%s: invariant %s ok: %s", s.name, name, v.Detail)
		}
	}
	if s.tx != nil && localPath() {
		// Under PGSINK_FAULTS_TX_LOCAL=1 a scenario that never took the
		// local path tested the staging path only.
		s.checkLocalPath()
	}
}

// evaluate runs the checks and records the verdicts without judging them.
func (s *scenario) evaluate(quiet bool, injected int) {
	ctx := context.Background()
	r := s.result
	r.Events = s.load.Events()
	r.DeadLettersInjected = injected
	r.Checks = map[string]verdict{}
	r.Checks["C"] = s.checkC(ctx, quiet)
	r.Checks["M"] = s.checkM(ctx)
	r.Checks["U"] = s.checkU(ctx)
	r.Checks["V"] = s.checkV(ctx)
	r.Checks["DL"] = s.checkDL(ctx, injected)
	r.Checks["R"] = s.checkR(ctx)
	if s.tx != nil {
		r.Checks["T"] = s.checkT(ctx)
	} else {
		r.Checks["O"] = s.checkO(ctx)
	}
	stale, dups, conflicts, lower := s.staleSkipped()
	bound := ""
	if lower {
		bound = "≥"
	}
	r.Stale = fmt.Sprintf("%s%d (+%s%d outbox dup.)", bound, stale, bound, dups)
	r.InsertConflicts = fmt.Sprintf("%s%d", bound, conflicts)
	r.Duration = time.Since(r.Started)
	recordResult(r)
}

var checkOrder = []string{"C", "M", "U", "V", "DL", "R", "O", "T"}

// checked lists, in checkOrder, the checks evaluate ran for this scenario:
// O without the outbox and T outside transaction mode are not.
func (s *scenario) checked() []string {
	var out []string
	for _, c := range checkOrder {
		if _, ok := s.result.Checks[c]; ok {
			out = append(out, c)
		}
	}
	return out
}

// checkC: the target's checksum equals the source's.
func (s *scenario) checkC(ctx context.Context, quiet bool) verdict {
	src, err := pgx.Connect(ctx, s.st.SourceURL)
	if err != nil {
		return fail("source: %v", err)
	}
	defer src.Close(ctx)
	a, n, err := s.checksum(ctx, src)
	if err != nil {
		return fail("source checksum: %v", err)
	}
	b, m, err := s.checksum(ctx, s.target)
	if err != nil {
		return fail("target checksum: %v", err)
	}
	if a != b {
		return fail("source %s (%d rows) != target %s (%d rows) (quiet: %v); first differences: %s", a, n, b, m, quiet, s.diffRows(ctx, src, s.target))
	}
	return pass(fmt.Sprintf("%d rows, md5 %s", n, a))
}

// checkM: no instance hit the offsets trigger, and the trigger is in place.
func (s *scenario) checkM(ctx context.Context) verdict {
	if who := s.logsContaining(markM); len(who) > 0 {
		return fail("offsets trigger raised in %v", who)
	}
	var n int
	if err := s.target.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname = 'faults_offsets_guard'`).Scan(&n); err != nil || n != 1 {
		return fail("offsets trigger missing (%d, %v)", n, err)
	}
	if dl := s.deadLettersMatching(ctx, markM); dl > 0 {
		return fail("%d dead letters carry the offsets trigger's error", dl)
	}
	return pass("no decrease of an epoch or a position")
}

// checkU: no instance ended other than by SIGTERM→0 or SIGKILL (an audit
// violation exits non-zero); the audit never saw a record twice (UNIQUE);
// and every offset below each partition's stored position is audited
// exactly once when nothing was replayed.
func (s *scenario) checkU(ctx context.Context) verdict {
	problems := s.processProblems()
	var audited int64
	var parts []string
	for _, topic := range s.auditedTopics() {
		n, detail, err := s.auditTopic(ctx, topic, &problems)
		if err != nil {
			return fail("%s: %v", topic, err)
		}
		audited += n
		parts = append(parts, detail)
	}
	s.result.Applied = int(audited)
	if len(problems) > 0 {
		return fail("%s", strings.Join(problems, "; "))
	}
	return pass(fmt.Sprintf("%d records audited once each (%s)", audited, strings.Join(parts, "; ")))
}

// processProblems lists the instances that ended other than by SIGTERM→0
// or SIGKILL, and those that logged an audit violation.
func (s *scenario) processProblems() []string {
	var problems []string
	for _, p := range s.procs {
		if msg := p.exitProblem(); msg != "" {
			problems = append(problems, msg)
		}
	}
	if who := s.logsContaining("a record applied twice"); len(who) > 0 {
		problems = append(problems, fmt.Sprintf("audit violation logged by %v", who))
	}
	return problems
}

// auditTopic compares one topic's audit with its stored positions: every
// offset below a partition's position audited once or a tombstone, none at
// or past it. It appends what is wrong to problems and returns the number
// of audited records and a summary.
func (s *scenario) auditTopic(ctx context.Context, topic string, problems *[]string) (int64, string, error) {
	rows, err := s.target.Query(ctx, `SELECT o.partition, o.next_offset,
		  (SELECT count(*) FROM pgsink.apply_audit a WHERE a.topic = o.topic AND a.partition = o.partition AND a."offset" < o.next_offset),
		  (SELECT count(*) FROM pgsink.apply_audit a WHERE a.topic = o.topic AND a.partition = o.partition AND a."offset" >= o.next_offset)
		FROM pgsink.offsets o WHERE o.topic = $1 ORDER BY 1`, topic)
	if err != nil {
		return 0, "", fmt.Errorf("audit query: %w", err)
	}
	type row struct {
		partition          int32
		next, below, above int64
	}
	var got []row
	var r row
	if _, err = pgx.ForEachRow(rows, []any{&r.partition, &r.next, &r.below, &r.above}, func() error {
		got = append(got, r)
		return nil
	}); err != nil {
		return 0, "", fmt.Errorf("audit query: %w", err)
	}
	// Tombstones (null values after deletes) are passed over, not applied,
	// so the audit does not list them: count them from the topic.
	ends := map[int32]int64{}
	for _, r := range got {
		ends[r.partition] = r.next
	}
	tombstones, err := s.tombstonesBelow(topic, ends)
	if err != nil {
		return 0, "", fmt.Errorf("reading the topic: %w", err)
	}
	var audited int64
	var parts []string
	for _, r := range got {
		audited += r.below
		parts = append(parts, fmt.Sprintf("p%d: position %d = %d audited + %d tombstones", r.partition, r.next, r.below, tombstones[r.partition]))
		if r.above > 0 {
			*problems = append(*problems, fmt.Sprintf("%s partition %d: %d audited offsets at or past the stored position %d (applied but position not moved: I1)", topic, r.partition, r.above, r.next))
		}
		if r.below+tombstones[r.partition] != r.next {
			*problems = append(*problems, fmt.Sprintf("%s partition %d: %d audited offsets + %d tombstones below position %d: a gap (a record passed without being applied or dead-lettered)",
				topic, r.partition, r.below, tombstones[r.partition], r.next))
		}
	}
	if len(got) == 0 && topic == s.topic {
		*problems = append(*problems, fmt.Sprintf("%s: no stored position at all", topic))
	}
	return audited, topic + ": " + strings.Join(parts, ", "), nil
}

// checkV: the version trigger never fired, in a log or a dead letter, and
// every target row carries a version (a row written without one would
// escape the guard).
func (s *scenario) checkV(ctx context.Context) verdict {
	if who := s.logsContaining(markV); len(who) > 0 {
		return fail("version trigger raised in %v", who)
	}
	if dl := s.deadLettersMatching(ctx, markV); dl > 0 {
		return fail("%d dead letters carry the version trigger's error (a stale write reached a row)", dl)
	}
	var missing int
	if err := s.target.QueryRow(ctx, `SELECT count(*) FROM public.accounts WHERE _pgsink_commit_lsn IS NULL OR _pgsink_lsn IS NULL`).Scan(&missing); err != nil {
		return fail("%v", err)
	}
	if missing > 0 {
		return fail("%d rows without a version", missing)
	}
	return pass("no version went backwards")
}

func (s *scenario) deadLettersMatching(ctx context.Context, mark string) int {
	var n int
	_ = s.target.QueryRow(ctx, `SELECT count(*) FROM pgsink.dead_letters WHERE error LIKE '%' || $1 || '%'`, mark).Scan(&n)
	return n
}

// checkDL: the dead letters are exactly the poison records injected.
func (s *scenario) checkDL(ctx context.Context, injected int) verdict {
	var n int
	if err := s.target.QueryRow(ctx, `SELECT count(*) FROM pgsink.dead_letters`).Scan(&n); err != nil {
		return fail("%v", err)
	}
	s.result.DeadLettered = n
	if n != injected {
		var reasons []string
		rows, _ := s.target.Query(ctx, `SELECT partition, "offset", left(error, 160) FROM pgsink.dead_letters ORDER BY id LIMIT 5`)
		var p int
		var o int64
		var e string
		_, _ = pgx.ForEachRow(rows, []any{&p, &o, &e}, func() error {
			reasons = append(reasons, fmt.Sprintf("p%d@%d: %s", p, o, e))
			return nil
		})
		return fail("%d dead letters, %d poison records injected; first: %s", n, injected, strings.Join(reasons, " | "))
	}
	return pass(fmt.Sprintf("%d dead letters = %d injected", n, injected))
}

// checkR: no key absent from the source is present in the target (a
// deleted key resurrected), and no key is missing.
func (s *scenario) checkR(ctx context.Context) verdict {
	src, err := pgx.Connect(ctx, s.st.SourceURL)
	if err != nil {
		return fail("%v", err)
	}
	defer src.Close(ctx)
	const query = `SELECT id FROM public.accounts`
	a, err := keySet[int32](ctx, src, query)
	if err != nil {
		return fail("%v", err)
	}
	b, err := keySet[int32](ctx, s.target, query)
	if err != nil {
		return fail("%v", err)
	}
	extra, missing := setDiff(a, b)
	if len(extra) > 0 {
		return fail("%d deleted keys present in the target (resurrected), e.g. %v; %d missing", len(extra), first(extra, 5), len(missing))
	}
	if len(missing) > 0 {
		return fail("%d source keys missing from the target, e.g. %v", len(missing), first(missing, 5))
	}
	return pass(fmt.Sprintf("%d keys, none resurrected", len(a)))
}

// diffRows lists the first rows that differ, to say what went wrong.
func (s *scenario) diffRows(ctx context.Context, src, dst *pgx.Conn) string {
	rows := func(conn *pgx.Conn) map[int32]string {
		out := map[int32]string{}
		r, _ := conn.Query(ctx, `SELECT id, row_to_json(q)::text FROM (`+s.sourceQuery()+`) q`)
		var id int32
		var j string
		_, _ = pgx.ForEachRow(r, []any{&id, &j}, func() error { out[id] = j; return nil })
		return out
	}
	a, b := rows(src), rows(dst)
	var diffs []string
	for id, ra := range a {
		if rb := b[id]; rb != ra && len(diffs) < 4 {
			diffs = append(diffs, fmt.Sprintf("source %s / target %s", clip(ra), clip(rb)))
		}
	}
	return strings.Join(diffs, "; ")
}

func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// keySet reads the one-column result of query into a set.
func keySet[K comparable](ctx context.Context, conn *pgx.Conn, query string, args ...any) (map[K]bool, error) {
	rows, _ := conn.Query(ctx, query, args...)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[K])
	set := map[K]bool{}
	for _, k := range keys {
		set[k] = true
	}
	return set, err
}

// setDiff returns the keys of target the source lacks (extra) and those of
// source the target lacks (missing).
func setDiff[K comparable](source, target map[K]bool) (extra, missing []K) {
	for k := range target {
		if !source[k] {
			extra = append(extra, k)
		}
	}
	for k := range source {
		if !target[k] {
			missing = append(missing, k)
		}
	}
	return extra, missing
}

func first[K any](ids []K, n int) []K {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
}
