//go:build integration

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// restartKills is how many kill -9s each membership is measured over.
const restartKills = 5

// restartMarkers are the rows written while no instance runs, spread over
// the topic's partitions: the restarted instance has resumed them all when
// every one is applied.
const restartMarkers = 8

// BenchmarkIntegrationResumeAfterKill measures, per kind of group
// membership, the time from starting a pgsink instance after its
// predecessor was killed with SIGKILL to the first, and to the last, of the
// records written meanwhile being applied (the median of restartKills
// kills). The records are in Kafka before the instance starts, so the time
// is the instance's own: process start, joining the group, claiming,
// fetching, applying. Run by `make bench-restart`; docs/benchmarks.md.
func BenchmarkIntegrationResumeAfterKill(b *testing.B) {
	st := stacktest.New(b)
	ctx := context.Background()
	st.Exec(`CREATE TABLE public.marks (id integer PRIMARY KEY, v text NOT NULL)`)
	topic := st.TopicPrefix + ".public.marks"
	if err := createTopic(ctx, st.Env.KafkaBootstrap, topic, 4); err != nil {
		b.Fatal(err)
	}
	st.RegisterDebezium("marks", map[string]string{"table.include.list": "public.marks"})
	targetURL := stacktest.OwnedTargetDatabase(b)
	target, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close(ctx)
	if _, err := target.Exec(ctx, `CREATE TABLE public.marks (id integer PRIMARY KEY, v text NOT NULL, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`); err != nil {
		b.Fatal(err)
	}
	memberships := []struct {
		name, kafka string
		env         []string
	}{
		{name: "dynamic"},
		{name: "static", env: []string{"PGSINK_INSTANCE_NAME=bench-0"}},
		{name: "kip848-dynamic", kafka: "  group.protocol: consumer\n"},
		{name: "kip848-static", kafka: "  group.protocol: consumer\n", env: []string{"PGSINK_INSTANCE_NAME=bench-0"}},
	}
	next := 0 // the next marker id
	for _, m := range memberships {
		b.Run(m.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "pgsink.yaml")
			yaml := fmt.Sprintf("kafka:\n  bootstrap.servers: %s\n  group.id: %s-%s\n%spostgres:\n  url: ${TARGET_URL}\nmetrics:\n  listen: 127.0.0.1:0\ntables:\n  - topic: %s\n    target: public.marks\n",
				st.Env.KafkaBootstrap, st.ID, m.name, m.kafka, topic)
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				b.Fatal(err)
			}
			env := append([]string{"TARGET_URL=" + targetURL}, m.env...)
			insert := func(n int) []int {
				ids := make([]int, n)
				for i := range ids {
					next++
					ids[i] = next
					st.Exec(`INSERT INTO public.marks VALUES ($1, $2)`, next, m.name)
				}
				return ids
			}
			p := startProc(b, m.name+"-0", path, env...)
			defer func() { p.signal(9); <-p.done }()
			if _, err := applied(marks(ctx, target, insert(1)), 3*time.Minute, func() {}); err != nil {
				b.Fatalf("%s: the first instance applied nothing: %v\n%s", m.name, err, tail(p.Logs(), 30))
			}
			var first, all []time.Duration
			for kill := 1; kill <= restartKills; kill++ {
				p.signal(9)
				<-p.done
				hw, err := highWatermarks(st.Env.KafkaBootstrap, topic)
				if err != nil {
					b.Fatal(err)
				}
				ids := insert(restartMarkers)
				if err := waitForRecords(st.Env.KafkaBootstrap, topic, hw+restartMarkers, time.Minute); err != nil {
					b.Fatal(err)
				}
				started := time.Now()
				p = startProc(b, fmt.Sprintf("%s-%d", m.name, kill), path, env...)
				exits := 0
				firstAt, err := applied(marks(ctx, target, ids), 3*time.Minute, func() {
					// A supervisor's restart: KIP-848 refuses a static
					// member's name until the dead one's session ends,
					// and the refused instance exits.
					if p.exited() {
						// The reason once: the test log keeps ten lines.
						if exits++; exits == 1 && kill == 1 {
							b.Logf("%s, restart %d: the instance exited (%s), starting it again:\n%s", m.name, kill, p.cmd.ProcessState, tail(p.Logs(), 3))
						}
						time.Sleep(time.Second)
						p = startProc(b, fmt.Sprintf("%s-%d.%d", m.name, kill, exits), path, env...)
					}
				})
				if err != nil {
					b.Fatalf("%s, restart %d: %v\n%s", m.name, kill, err, tail(p.Logs(), 30))
				}
				first, all = append(first, firstAt.Sub(started)), append(all, time.Since(started))
				b.Logf("%s, restart %d: first record applied after %s, all %d after %s (%d refused starts)", m.name, kill,
					first[kill-1].Round(time.Millisecond), restartMarkers, all[kill-1].Round(time.Millisecond), exits)
			}
			b.ReportMetric(median(first).Seconds(), "first-s")
			b.ReportMetric(median(all).Seconds(), "all-s")
		})
	}
}

// markers counts the ids of want in the target's public.marks: what
// applied polls.
type markers struct {
	want  int
	count func() (int, error)
}

func marks(ctx context.Context, target *pgx.Conn, ids []int) markers {
	return markers{want: len(ids), count: func() (int, error) {
		var n int
		err := target.QueryRow(ctx, `SELECT count(*) FROM public.marks WHERE id = ANY($1)`, ids).Scan(&n)
		return n, err
	}}
}

// applied polls the target until every marker is there, and returns when
// the first of them was; between polls it calls each.
func applied(m markers, timeout time.Duration, each func()) (time.Time, error) {
	var first time.Time
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := m.count()
		if err != nil {
			return first, err
		}
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n == m.want {
			return first, nil
		}
		each()
		time.Sleep(10 * time.Millisecond)
	}
	return first, fmt.Errorf("%d markers not all applied within %s", m.want, timeout)
}

// highWatermarks sums a topic's high watermarks over its partitions.
func highWatermarks(bootstrap, topic string) (int64, error) {
	var sum int64
	for p := int32(0); p < 4; p++ {
		hw, err := stacktest.HighWatermark(bootstrap, topic, p)
		if err != nil {
			return 0, err
		}
		sum += hw
	}
	return sum, nil
}

// waitForRecords waits until the topic holds want records.
func waitForRecords(bootstrap, topic string, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		hw, err := highWatermarks(bootstrap, topic)
		if err == nil && hw >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s holds %d records, want %d (%v)", topic, hw, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
