package connector

import (
	"sync"
	"time"

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
		u.log.Warn("target PostgreSQL unavailable: retrying until it is back, offsets unmoved (pgsink_apply_unavailable_retries_total; logged every 10 s at most)",
			zap.Duration("unavailable_for", since), zap.Error(err))
	}
}
