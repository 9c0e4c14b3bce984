//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EGroupOfThree runs three `pgsink run` processes in one group over a
// 6-partition topic under a steady workload, starting and stopping them one
// by one with SIGTERM. After each change settles, every partition is owned
// by exactly one live instance (the offsets table and the instances'
// metrics agree); every SIGTERM exits 0; at the end the target equals the
// source and the apply audit (UNIQUE topic, partition, offset, written in
// each apply transaction) shows no record was applied twice.
func TestE2EGroupOfThree(t *testing.T) {
	waitsInParallel(t)
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	topic := st.TopicPrefix + ".public.items"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 6); err != nil {
		t.Fatal(err)
	}
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})

	targetURL, target := itemsTarget(t)

	// A steady workload: small transactions of inserts, updates and deletes
	// over 2,000 keys, until stopped.
	load := startItemsLoad(t, st.SourceURL, itemsLoadShape{seed: 7, keys: 2000, every: 5 * time.Millisecond, deletesInTen: 2})

	type instance struct {
		p    *process
		port int
	}
	start := func(name string) *instance {
		port := freePort(t)
		p := startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
  session.timeout.ms: 10000
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
`, st.Env.KafkaBootstrap, st.ID, port, topic), "TARGET_URL="+targetURL, "PGSINK_TEST_AUDIT=1")
		t.Logf("started %s (pid %d)", name, p.cmd.Process.Pid)
		return &instance{p: p, port: port}
	}
	live := map[string]*instance{}
	// settle waits for the group to settle, then lets the workload run a
	// few seconds under that membership.
	settle := func(step string) {
		defer time.Sleep(3 * time.Second)
		eventually(t, 60*time.Second, step+": every partition owned by exactly one live instance", func() (bool, string) {
			owners := partitionOwners(t, targetURL)
			total := 0
			var state []string
			for name, in := range live {
				n := ownedPartitions(in.port)
				total += n
				state = append(state, fmt.Sprintf("%s(pid %d) owns %d", name, in.p.cmd.Process.Pid, n))
			}
			pids := map[string]bool{}
			for _, in := range live {
				pids[strconv.Itoa(in.p.cmd.Process.Pid)] = true
			}
			ok := total == 6 && len(owners) == 6
			for _, owner := range owners {
				ok = ok && pids[owner[strings.LastIndexByte(owner, ':')+1:]]
			}
			return ok, fmt.Sprintf("%s; offsets table owners %v", strings.Join(state, ", "), owners)
		})
	}
	stop := func(name string) {
		code, took := live[name].p.stop(60 * time.Second)
		if code != 0 {
			t.Fatalf("%s exited %d after SIGTERM under load, want 0", name, code)
		}
		t.Logf("stopped %s with SIGTERM: exit 0 in %s", name, took.Round(time.Millisecond))
		delete(live, name)
	}

	live["a"] = start("a")
	settle("a alone")
	live["b"] = start("b")
	settle("a and b")
	live["c"] = start("c")
	settle("a, b and c")
	stop("a")
	settle("b and c")
	live["a"] = start("a again")
	settle("a, b and c again")
	stop("b")
	settle("a and c")

	t.Logf("workload: %d statements", load.stop())
	query := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	eventually(t, 90*time.Second, "target equals source", func() (bool, string) {
		src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
		return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
	})
	var audited, dead int
	if err := target.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgsink.apply_audit), (SELECT count(*) FROM pgsink.dead_letters)`).Scan(&audited, &dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Fatalf("%d dead letters, want none", dead)
	}
	t.Logf("%d records applied, each once (UNIQUE audit)", audited)
	for name := range live {
		stop(name)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var ownedRE = regexp.MustCompile(`(?m)^pgsink_partitions_owned (\d+)`)

// ownedPartitions reads an instance's pgsink_partitions_owned gauge; -1 when
// it does not answer yet.
func ownedPartitions(port int) int {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -100
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := ownedRE.FindSubmatch(body)
	if m == nil {
		return -100
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// partitionOwners returns the owner of each partition row in the offsets table.
func partitionOwners(t *testing.T, url string) map[int]string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `SELECT partition, owner FROM pgsink.offsets`)
	owners := map[int]string{}
	var p int
	var owner string
	if _, err := pgx.ForEachRow(rows, []any{&p, &owner}, func() error { owners[p] = owner; return nil }); err != nil {
		return owners
	}
	return owners
}

// itemsLoadShape is the shape of startItemsLoad's workload: every "every",
// one statement on a key drawn from 1..keys by a generator seeded with
// seed, a delete deletesInTen times in ten, else an upsert.
type itemsLoadShape struct {
	seed         uint64
	keys         int
	every        time.Duration
	deletesInTen int
}

// itemsLoad is a running startItemsLoad.
type itemsLoad struct {
	halt       chan struct{}
	wg         sync.WaitGroup
	statements int
}

// startItemsLoad writes public.items on the source, one autocommitted
// statement at a time, until stop (also called at the test's cleanup).
func startItemsLoad(t *testing.T, sourceURL string, shape itemsLoadShape) *itemsLoad {
	ctx := context.Background()
	l := &itemsLoad{halt: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		conn, err := pgx.Connect(ctx, sourceURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		rng := rand.New(rand.NewPCG(shape.seed, shape.seed))
		for {
			select {
			case <-l.halt:
				return
			case <-time.After(shape.every):
			}
			id := rng.IntN(shape.keys) + 1
			sql := fmt.Sprintf(`DELETE FROM public.items WHERE id = %d`, id)
			if rng.IntN(10) >= shape.deletesInTen {
				sql = fmt.Sprintf(`INSERT INTO public.items VALUES (%d, 'v%d', %d.25, now(), '{"n": %d}', NULL)
					ON CONFLICT (id) DO UPDATE SET name = excluded.name, amount = items.amount + 1, doc = excluded.doc, updated_at = now()`,
					id, rng.IntN(1000), rng.IntN(10000), rng.IntN(100))
			}
			if _, err := conn.Exec(ctx, sql); err != nil {
				t.Error(err)
				return
			}
			l.statements++
		}
	}()
	t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the workload, waits for its last statement, and returns how
// many statements it ran.
func (l *itemsLoad) stop() int {
	select {
	case <-l.halt:
	default:
		close(l.halt)
	}
	l.wg.Wait()
	return l.statements
}
