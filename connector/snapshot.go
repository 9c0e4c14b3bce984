package connector

import (
	"context"
	"errors"
	"time"

	"github.com/pgsink/pgsink/dedup"
	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
)

// sweepInterval is how often an instance looks for snapshot ends it can
// sweep: the delay between the last partition passing its share of a
// snapshot and the sweep.
const sweepInterval = 2 * time.Second

// sweeper finishes snapshot reconciliation (sink/sweep.go): for each
// recorded snapshot end of the group it reads the topic's high watermarks
// once, then sweeps when every partition's stored position has reached
// them. Every instance runs one; the sweep's row lock lets one of them do
// each sweep, once.
type sweeper struct {
	group   string
	pool    dedup.Querier
	db      dedup.DB
	applier *sink.Applier
	router  *sink.Router
	kafka   *Inspector
	metrics *Metrics
	log     *zap.Logger
	// unavailable takes a look that found the target down: the instance's
	// partitions report the same outage, so the sweeper's looks every
	// sweepInterval add to its counter and rate-limited warning rather than
	// a warning of their own at each look.
	unavailable *unavailableReporter
	downSince   time.Time
}

// run sweeps every sweepInterval until ctx ends.
func (s *sweeper) run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		if err := s.once(ctx); ctx.Err() == nil {
			s.logResult(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logResult says what one look found wrong: an unavailable target through
// the instance's outage reporter, anything else as a warning at each look.
func (s *sweeper) logResult(err error) {
	var other []error
	for _, e := range joined(err) {
		if sink.Unavailable(e) {
			if s.downSince.IsZero() {
				s.downSince = time.Now()
			}
			s.unavailable.report(e, time.Since(s.downSince))
			continue
		}
		other = append(other, e)
	}
	if len(other) == len(joined(err)) {
		s.downSince = time.Time{}
	}
	if len(other) > 0 {
		s.log.Warn("snapshot reconciliation", zap.Error(errors.Join(other...)))
	}
}

// joined lists the errors err joins (errors.Join), or err alone; nil for
// nil.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, joined(e)...)
		}
		return out
	}
	return []error{err}
}

// once looks at every pending snapshot end once.
func (s *sweeper) once(ctx context.Context) error {
	snaps := s.applier.Snapshots()
	pending, err := snaps.Pending(ctx, s.pool, s.group)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range pending {
		if e.Watermarks == nil {
			errs = append(errs, s.readWatermarks(ctx, snaps, e))
			continue // swept at the next look, once the positions reach them
		}
		errs = append(errs, s.sweep(ctx, e))
	}
	return errors.Join(errs...)
}

// readWatermarks stores the high watermarks of e's topic, read now: after
// the table's last snapshot record was applied, so at or past every
// snapshot record Kafka had appended when Debezium ended the table.
func (s *sweeper) readWatermarks(ctx context.Context, snaps dedup.Snapshots, e dedup.SnapshotEnd) error {
	parts, err := s.kafka.Partitions(e.Topic)
	if err != nil {
		return err
	}
	marks := make([]int64, len(parts))
	for i, p := range parts {
		if p != int32(i) {
			return errors.New("partitions of " + e.Topic + " are not numbered from 0")
		}
		if _, marks[i], err = s.kafka.Watermarks(e.Topic, p); err != nil {
			return err
		}
	}
	return snaps.SetWatermarks(ctx, s.db, e, marks)
}

// sweep sweeps e if it is due, and tells.
func (s *sweeper) sweep(ctx context.Context, e dedup.SnapshotEnd) error {
	table, err := s.router.TableOf(ctx, e.Topic, e.Target)
	if err != nil {
		return err
	}
	n, err := s.applier.Sweep(ctx, table, e)
	if errors.Is(err, dedup.ErrNotSweepable) {
		return nil
	}
	if err != nil {
		return err
	}
	s.metrics.SnapshotSwept.WithLabelValues(e.Target).Add(float64(n))
	s.log.Info("snapshot reconciled: rows the snapshot did not read swept", zap.String("table", e.Target), zap.String("topic", e.Topic),
		zap.Int64("snapshot_commit_lsn", e.CommitLSN), zap.Int64("snapshot_lsn", e.LSN), zap.Int64("swept", n))
	return nil
}

// startSweeper runs the instance's sweeper until ctx ends; not with
// apply.offsets: kafka, which keeps no positions in PostgreSQL to tell when
// every partition has passed a snapshot.
func (r *Runner) startSweeper(ctx context.Context) error {
	if r.deps.kafkaOffsets {
		return nil
	}
	in, err := NewInspector(r.cfg)
	if err != nil {
		return err
	}
	s := &sweeper{group: r.group(), pool: r.pool, db: r.pool, applier: r.applier, router: r.router,
		kafka: in, metrics: r.metrics, log: r.log, unavailable: r.unavailable}
	go func() {
		defer in.Close()
		s.run(ctx)
	}()
	return nil
}
