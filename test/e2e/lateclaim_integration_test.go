//go:build integration

package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// applyWatch samples, every 250 ms, each partition's row in the offsets
// table beside Kafka's high watermark: it fails the test if a stored
// position ever goes backwards, and measures for each partition the
// longest time its position stood still while Kafka held records past it
// (no instance applying it).
type applyWatch struct {
	t          *testing.T
	partitions int
	began      time.Time

	mu sync.Mutex
	// last is each partition's last sample, stillSince since when its
	// position has stood still behind the high watermark (zero: it has
	// not).
	last       map[int32]offsetSample
	stillSince map[int32]time.Time
	// longest is each partition's longest still in the current phase
	// (restart begins the next); log is the epoch changes, in order.
	longest map[int32]stall
	log     []string
	stop    chan struct{}
	done    chan struct{}
}

type offsetSample struct {
	next, epoch, high int64
	owner             string
}

type stall struct {
	from, to time.Time
	at       int64
}

func watchApplies(t *testing.T, targetURL, bootstrap, topic string, partitions int) *applyWatch {
	w := &applyWatch{t: t, partitions: partitions, began: time.Now(), last: map[int32]offsetSample{},
		stillSince: map[int32]time.Time{}, longest: map[int32]stall{}, stop: make(chan struct{}), done: make(chan struct{})}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		t.Fatal(err)
	}
	watermarks, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "stacktest-watermarks"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		defer conn.Close(ctx)
		defer watermarks.Close()
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			highs := map[int32]int64{}
			for p := range int32(partitions) {
				_, high, err := watermarks.QueryWatermarkOffsets(topic, p, 5000)
				if err != nil {
					continue
				}
				highs[p] = high
			}
			rows, _ := conn.Query(ctx, `SELECT partition, next_offset, epoch, owner FROM pgsink.offsets WHERE topic = $1`, topic)
			var p int32
			var s offsetSample
			now := time.Now()
			_, err := pgx.ForEachRow(rows, []any{&p, &s.next, &s.epoch, &s.owner}, func() error {
				high, ok := highs[p]
				if !ok {
					return nil
				}
				s.high = high
				w.sample(now, p, s)
				return nil
			})
			if err != nil && ctx.Err() == nil {
				t.Logf("watch: %v", err)
			}
		}
	}()
	t.Cleanup(w.finish)
	return w
}

func (w *applyWatch) sample(now time.Time, p int32, s offsetSample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, seen := w.last[p]
	w.last[p] = s
	if seen && s.next < prev.next {
		w.t.Errorf("partition %d: stored position went back from %d to %d (epoch %d -> %d, owner %s -> %s)",
			p, prev.next, s.next, prev.epoch, s.epoch, prev.owner, s.owner)
	}
	if !seen || s.epoch != prev.epoch {
		w.log = append(w.log, fmt.Sprintf("%6.1fs partition %d: epoch %d owner %s next_offset %d (high %d)",
			now.Sub(w.began).Seconds(), p, s.epoch, s.owner, s.next, s.high))
	}
	if seen && s.next == prev.next && s.next < s.high {
		if w.stillSince[p].IsZero() {
			w.stillSince[p] = now
		}
		w.note(p, now, s.next)
		return
	}
	w.stillSince[p] = time.Time{}
}

// note records partition p's current still, if it is its longest.
func (w *applyWatch) note(p int32, now time.Time, at int64) {
	since := w.stillSince[p]
	if since.IsZero() {
		return
	}
	if l := w.longest[p]; now.Sub(since) > l.to.Sub(l.from) {
		w.longest[p] = stall{from: since, to: now, at: at}
	}
}

// restart forgets the stills measured so far: the next phase is measured
// on its own.
func (w *applyWatch) restart() map[int32]stall {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.longest
	w.longest = map[int32]stall{}
	now := time.Now()
	for p := range w.stillSince {
		if !w.stillSince[p].IsZero() {
			w.stillSince[p] = now
		}
	}
	return out
}

func (w *applyWatch) longestStill() map[int32]stall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.longest)
}

func (w *applyWatch) describe(stalls map[int32]stall) string {
	var parts []string
	for p := range int32(w.partitions) {
		s, ok := stalls[p]
		if !ok {
			parts = append(parts, fmt.Sprintf("partition %d: none", p))
			continue
		}
		parts = append(parts, fmt.Sprintf("partition %d: %.1fs at offset %d (%.1fs-%.1fs)", p, s.to.Sub(s.from).Seconds(), s.at,
			s.from.Sub(w.began).Seconds(), s.to.Sub(w.began).Seconds()))
	}
	return strings.Join(parts, "; ")
}

func (w *applyWatch) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// lateClaimLines are the log lines that tell who claimed, lost, was fenced
// by and took back a partition.
var lateClaimLines = regexp.MustCompile(`(?m)^.*(partition claimed|partitions claimed|claimed by another instance|claiming it back|re-claimed|MAXPOLL|SESSTMOUT|revoked|unavailable|not claimed|stopping the instance|partition stopped).*$`)

// TestE2ELateClaimAfterTheGroupDroppedTheMember: instance A reaches the
// target through a proxy, B directly, both in one group with a short
// max.poll.interval.ms, under a live workload. The proxy goes down, B1
// leaves, and the rebalance assigns its partitions to A while A's target
// is unavailable. B2 joins, and the test lets max.poll.interval.ms and a
// session timeout pass: the group must go on with what A and B2 hold. Then
// A's target comes back.
//
// A claim that waited for the target inside A's rebalance callback kept A
// from the group: the group dropped A and gave every partition to B2, and
// once the target was back A's claim went through late, raising the
// epochs of partitions B2 applied, which then applied nothing for the 60 s
// of B2's fenceGrace. Now A assigns those partitions paused and claims
// them from its poll loop: A stays in the group, a partition the group
// moves to B2 is dropped unclaimed, and A claims the rest once the target
// is back.
//
// Invariants: no stored position ever goes back; after A's target is back
// no partition stands still behind Kafka for longer than stallBound; the
// target equals the source once the workload stops, no record applied
// twice (the audit's UNIQUE), no dead letter, neither instance stopped.
func TestE2ELateClaimAfterTheGroupDroppedTheMember(t *testing.T) {
	waitsInParallel(t)
	const (
		partitions = 3
		maxPoll    = 10 * time.Second
		session    = 6 * time.Second
		// stallBound is how long, at most, a partition may stand still
		// behind Kafka once A's target is back: the outage's retry
		// schedule (apply.retry.max_backoff, 10 s by default) and a
		// rebalance, well short of fenceGrace (60 s).
		stallBound = 25 * time.Second
		// postOutageLoad is how long the workload goes on once A's
		// target is back: past a late claim's moment with room to spare
		// (see its use).
		postOutageLoad = 35 * time.Second
	)
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	topic := st.TopicPrefix + ".public.items"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, partitions); err != nil {
		t.Fatal(err)
	}
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL, target := itemsTarget(t)
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := stacktest.NewProxy(t, u.Host)
	throughProxy, err := proxy.URL(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Up() })

	load := startItemsLoad(t, st.SourceURL, itemsLoadShape{seed: 11, keys: 600, every: 10 * time.Millisecond, deletesInTen: 1})

	type instance struct {
		p    *process
		port int
	}
	start := func(name, targetURL string) *instance {
		port := freePort(t)
		p := startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
  session.timeout.ms: %d
  heartbeat.interval.ms: 1000
  max.poll.interval.ms: %d
postgres:
  url: ${TARGET_URL}
  max_connections: 3
apply:
  batch: { max_records: 200, max_wait: 50ms }
metrics:
  listen: 127.0.0.1:%d
tables:
  - topic: %s
    target: public.items
`, st.Env.KafkaBootstrap, st.ID, session.Milliseconds(), maxPoll.Milliseconds(), port, topic), "TARGET_URL="+targetURL, "PGSINK_TEST_AUDIT=1")
		t.Logf("started %s (pid %d)", name, p.cmd.Process.Pid)
		return &instance{p: p, port: port}
	}
	owned := func(ins ...*instance) string {
		var s []string
		for _, in := range ins {
			s = append(s, fmt.Sprintf("pid %d owns %d", in.p.cmd.Process.Pid, ownedPartitions(in.port)))
		}
		return strings.Join(s, ", ")
	}
	assigned := func(in *instance) float64 {
		v, _ := metricValue(in.port, `pgsink_rebalances_total{kind="assigned"}`)
		return v
	}

	b1 := start("b1 (direct)", targetURL)
	eventually(t, 60*time.Second, "b1 owns every partition", func() (bool, string) {
		return ownedPartitions(b1.port) == partitions, owned(b1)
	})
	a := start("a (through the proxy)", throughProxy)
	eventually(t, 60*time.Second, "a and b1 share the partitions", func() (bool, string) {
		na, nb := ownedPartitions(a.port), ownedPartitions(b1.port)
		return na > 0 && nb > 0 && na+nb == partitions, owned(a, b1)
	})
	t.Logf("a and b1: %s", owned(a, b1))
	watch := watchApplies(t, targetURL, st.Env.KafkaBootstrap, topic, partitions)

	// A's target goes away; B1 leaves, and the rebalance hands its
	// partitions to A, whose claim of them waits for the target.
	proxy.Down()
	before := assigned(a)
	if code, _ := b1.p.stop(60 * time.Second); code != 0 {
		t.Fatalf("b1 exited %d after SIGTERM, want 0", code)
	}
	eventually(t, 60*time.Second, "b1's partitions assigned to a", func() (bool, string) {
		return assigned(a) > before, fmt.Sprintf("%v assignments", assigned(a))
	})
	claimWait := time.Now()
	t.Logf("%.1fs: a's claim of b1's partitions met the target down", claimWait.Sub(watch.began).Seconds())

	// B2 joins. A member stuck in a rebalance callback cannot rejoin:
	// past max.poll.interval.ms it leaves the group, and its session ends
	// (session.timeout.ms): let both pass, with B2 applying what it holds.
	b2 := start("b2 (direct)", targetURL)
	eventually(t, 60*time.Second, "b2 applies the partitions it owns", func() (bool, string) {
		n := ownedPartitions(b2.port)
		owners := partitionOwners(t, targetURL)
		pid := fmt.Sprintf(":%d", b2.p.cmd.Process.Pid)
		applied := 0
		for _, o := range owners {
			if strings.HasSuffix(o, pid) {
				applied++
			}
		}
		return n >= 1 && applied == n, fmt.Sprintf("%s; owners %v", owned(a, b2), owners)
	})
	for time.Since(claimWait) < maxPoll+session+2*time.Second {
		time.Sleep(250 * time.Millisecond)
	}
	awaiting, _ := metricValue(a.port, "pgsink_partitions_awaiting_claim")
	t.Logf("%.1fs: %s, a awaits the claim of %v, %.1fs after a's claim first met the target down", time.Since(watch.began).Seconds(), owned(a, b2),
		awaiting, time.Since(claimWait).Seconds())
	time.Sleep(3 * time.Second)
	outage := watch.restart()
	t.Logf("longest stills while a's target was down: %s", watch.describe(outage))

	// A's target comes back.
	if err := proxy.Up(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("%.1fs: a's target is back", back.Sub(watch.began).Seconds())
	// The workload goes on past the moment a late claim of A's would go
	// through (within apply.retry.max_backoff, 10 s, of the target's
	// return), so that a partition it fenced has records past its
	// position from then on: left without an applying owner for its
	// fenceGrace (60 s), it stands still until then, and the watch, which
	// samples until the target equals the source, measures that still
	// against stallBound whether or not the workload still runs.
	time.Sleep(postOutageLoad)
	statements := load.stop()
	t.Logf("%.1fs: workload stopped after %d statements; %s", time.Since(watch.began).Seconds(), statements, owned(a, b2))
	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	eventually(t, 60*time.Second, "target equals source", func() (bool, string) {
		src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
		return src == dst, fmt.Sprintf("source %s, target %s; %s", src, dst, owned(a, b2))
	})
	settled := time.Since(watch.began)
	watch.finish()
	after := watch.longestStill()
	t.Logf("%.1fs: target equals source", settled.Seconds())
	t.Logf("longest stills once a's target was back: %s", watch.describe(after))
	watch.mu.Lock()
	t.Logf("owner changes:\n%s", strings.Join(watch.log, "\n"))
	watch.mu.Unlock()
	var audited, dead int
	if err := target.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgsink.apply_audit), (SELECT count(*) FROM pgsink.dead_letters)`).Scan(&audited, &dead); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records applied, each once (UNIQUE audit); %d dead letters", audited, dead)
	if dead != 0 {
		t.Errorf("%d dead letters, want none", dead)
	}
	for name, in := range map[string]*instance{"a": a, "b2": b2} {
		logs := in.p.Logs()
		t.Logf("%s's lines about claims and rebalances:\n%s", name, strings.Join(lateClaimLines.FindAllString(logs, -1), "\n"))
		if strings.Contains(logs, "stopping the instance") {
			t.Errorf("%s was told to stop", name)
		}
	}
	for p, s := range after {
		if d := s.to.Sub(s.from); d > stallBound {
			t.Errorf("partition %d stood still behind Kafka for %.1fs once a's target was back (at offset %d), want at most %s", p, d.Seconds(), s.at, stallBound)
		}
	}
	for name, in := range map[string]*instance{"a": a, "b2": b2} {
		if code, _ := in.p.stop(60 * time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", name, code)
		}
	}
}
