package connector

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/pgsink/pgsink/internal/backoff"
	"github.com/pgsink/pgsink/sink"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// unavailableLogEvery is how often, at most, an instance logs that its
// target cannot be reached while its partitions wait for it.
const unavailableLogEvery = 10 * time.Second

// unavailableReporter is sink.Retry.OnUnavailable for an instance: every
// partition (and the resolver) retries a target that is down for as long as
// it is down (a restart, a failover), their offsets unmoved, and this says
// so while it lasts: a counter of the attempts, and a warning at most once
// per unavailableLogEvery for the whole instance.
type unavailableReporter struct {
	log      *zap.Logger
	attempts prometheus.Counter

	mu     sync.Mutex
	logged time.Time
}

func newUnavailableReporter(log *zap.Logger, attempts prometheus.Counter) *unavailableReporter {
	return &unavailableReporter{log: log, attempts: attempts}
}

// report takes one attempt that found the target unavailable, since is how
// long the caller has found it so.
func (u *unavailableReporter) report(err error, since time.Duration) {
	if u == nil {
		return
	}
	if u.attempts != nil {
		u.attempts.Inc()
	}
	u.mu.Lock()
	due := time.Since(u.logged) >= unavailableLogEvery
	if due {
		u.logged = time.Now()
	}
	u.mu.Unlock()
	if due && u.log != nil {
		fields := []zap.Field{zap.Duration("unavailable_for", since), zap.Error(err)}
		if host, ok := sink.HostNotFound(err); ok {
			// An outage too (the target was reached before), but one
			// that a renamed or removed host would also explain.
			fields = append(fields, zap.String("host_not_found", host))
		}
		u.log.Warn("target PostgreSQL unavailable: retrying until it is back, offsets unmoved (pgsink_apply_unavailable_retries_total; logged every 10 s at most)", fields...)
	}
}

// outageWait waits out a target that is unavailable (sink.Unavailable)
// where the instance touches it outside an apply — a re-claim, a catalog
// read while routing, and (on its schedule, from the poll loop: see
// awaitingClaims) a claim at a rebalance — as sink.Applier's retry does
// inside one: for as long as the outage lasts, reported to the same
// counter and rate-limited warning, given up at once when the partition is
// revoked or the instance stops. Any other error is returned at once, to
// stop what it stops as before: only a restart or a failover is worth
// waiting for without end.
type outageWait struct {
	report           *unavailableReporter
	initial, maximum time.Duration
}

// do runs fn until it returns nil or an error that is not Unavailable, ctx
// ends, or stop closes (then the error wraps sink.ErrStopping).
func (o outageWait) do(ctx context.Context, stop <-chan struct{}, fn func() error) error {
	waits := o.schedule()
	var since time.Time
	for {
		err := fn()
		if err == nil || !sink.Unavailable(err) || ctx.Err() != nil {
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		o.report.report(err, time.Since(since))
		select {
		case <-stop:
			return errors.Join(sink.ErrStopping, err)
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(waits.Next()):
		}
	}
}

// schedule is the waits between two attempts. Jittered as the applier's:
// after a restart every partition of every instance waits at once, and
// must not come back at once.
func (o outageWait) schedule() *backoff.Jittered {
	return backoff.New(cmp.Or(o.initial, time.Second), cmp.Or(o.maximum, 30*time.Second))
}
