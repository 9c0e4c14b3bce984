package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// FailpointEnv names the failpoints fault tests arm: a comma-separated list
// of point:probability, e.g. "before-commit:0.05,after-commit:0.05". At an
// armed point the process kills itself with SIGKILL with that probability,
// the harshest crash there is: no deferred call, no flush, no goodbye.
//
// Points: before-commit (inside the apply transaction, a batch's or the
// transaction-consistent resolver's, just before COMMIT),
// after-commit (the transaction committed, nothing else done yet),
// after-kafka-commit (the offset also stored for Kafka's lag commit);
// swap-before-commit and swap-after-commit (an online rebuild's swap
// transaction, just before and just after its COMMIT); local-after-take and
// local-after-commit (the resolver holds records of the local path taken
// from their partitions' store, its apply not begun; it committed them, the
// store not yet told).
const FailpointEnv = "PGSINK_FAILPOINTS"

// Failpoints are the armed points and their probabilities.
type Failpoints map[string]float64

var knownFailpoints = map[string]bool{"before-commit": true, "after-commit": true, "after-kafka-commit": true,
	"swap-before-commit": true, "swap-after-commit": true, "local-after-take": true, "local-after-commit": true}

func ParseFailpoints(spec string) (Failpoints, error) {
	fp := Failpoints{}
	if spec == "" {
		return fp, nil
	}
	for _, part := range strings.Split(spec, ",") {
		name, prob, ok := strings.Cut(strings.TrimSpace(part), ":")
		p, err := strconv.ParseFloat(prob, 64)
		if !ok || err != nil || p < 0 || p > 1 || !knownFailpoints[name] {
			return nil, fmt.Errorf("%s: %q: want point:probability with a point among before-commit, after-commit, after-kafka-commit, swap-before-commit, swap-after-commit, local-after-take, local-after-commit and 0 <= probability <= 1", FailpointEnv, part)
		}
		fp[name] = p
	}
	return fp, nil
}

// Hit kills the process at an armed point, with its probability.
func (fp Failpoints) Hit(point string) {
	if p, ok := fp[point]; ok && rand.Float64() < p {
		fmt.Fprintf(os.Stderr, "failpoint %s: SIGKILL\n", point)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
