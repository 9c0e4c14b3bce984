package backoff

import (
	"math/rand/v2"
	"time"
)

// Jittered is one retry loop's schedule: each wait is drawn uniformly
// between Base and three times the previous wait, capped at Cap
// ("decorrelated jitter"). Waits grow about as fast as doubling, but two
// loops that start together drift apart from the first retry on. The zero
// value is not usable: build it with New.
type Jittered struct {
	base, limit, prev time.Duration
	rand              func() float64
}

// New returns a schedule whose waits lie in [base, limit]. A limit below
// base is taken as base.
func New(base, limit time.Duration) *Jittered {
	return &Jittered{base: base, limit: max(limit, base), prev: base, rand: rand.Float64}
}

// Next is the wait before the next retry.
func (j *Jittered) Next() time.Duration {
	hi := min(3*j.prev, j.limit)
	d := j.base
	if hi > j.base {
		d += time.Duration(j.rand() * float64(hi-j.base))
	}
	j.prev = d
	return d
}
