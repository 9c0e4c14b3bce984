package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// Background is what else ran on the stack during a latency run: on two
// cores any of it takes CPU from PostgreSQL and pgsink, and a round that
// met it is told apart by it, not dropped.
type Background struct {
	// AutovacuumSeconds is how long at least one autovacuum worker ran
	// (sampled every backgroundTick), AutovacuumTables what they worked
	// on ("database: VACUUM ANALYZE table").
	AutovacuumSeconds float64  `json:"autovacuum_seconds"`
	AutovacuumTables  []string `json:"autovacuum_tables,omitempty"`
	// Checkpoints started during the run (timed or requested).
	Checkpoints int64 `json:"checkpoints"`
	// BrokerCPUSeconds is the Kafka broker's CPU over the run and
	// BrokerJITSeconds its JIT compiler threads' share: a broker started
	// minutes before still compiles its request paths.
	BrokerCPUSeconds float64 `json:"broker_cpu_seconds"`
	BrokerJITSeconds float64 `json:"broker_jit_seconds"`
}

const backgroundTick = 500 * time.Millisecond

// primedJITSeconds: a priming run in which the broker's JIT compiler took
// less CPU than this leaves a broker whose request paths are compiled.
const primedJITSeconds = 1.0

// watcher samples PostgreSQL's autovacuum workers while a run goes on.
type watcher struct {
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	conn       *pgx.Conn
	broker     int
	ckpt0      int64
	cpu0, jit0 float64
	mu         sync.Mutex
	autovacuum float64
	tables     map[string]bool
	once       sync.Once
	result     Background
}

// watchBackground starts a watcher; its stop returns what ran.
func watchBackground(ctx context.Context, env stacktest.Env) *watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel, tables: map[string]bool{}, broker: readPID(filepath.Join(stackDir(), "kafka", "kafka.pid"))}
	conn, err := pgx.Connect(ctx, env.AdminURL)
	if err != nil {
		logf("background: %v", err)
		conn = nil
	}
	w.conn = conn
	w.ckpt0 = checkpoints(ctx, conn)
	w.cpu0, w.jit0 = jvmCPU(w.broker)
	if conn == nil {
		return w
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(backgroundTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			workers := autovacuumWorkers(ctx, conn)
			w.mu.Lock()
			if len(workers) > 0 {
				w.autovacuum += backgroundTick.Seconds()
			}
			for _, x := range workers {
				w.tables[x] = true
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// stop ends the sampling (once; later calls return the same) and returns
// what ran since watchBackground.
func (w *watcher) stop() Background {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
		b := Background{AutovacuumSeconds: w.autovacuum}
		if w.conn != nil {
			b.Checkpoints = checkpoints(context.Background(), w.conn) - w.ckpt0
			w.conn.Close(context.Background())
		}
		cpu1, jit1 := jvmCPU(w.broker)
		b.BrokerCPUSeconds, b.BrokerJITSeconds = cpu1-w.cpu0, jit1-w.jit0
		for t := range w.tables {
			b.AutovacuumTables = append(b.AutovacuumTables, t)
		}
		slices.Sort(b.AutovacuumTables)
		w.result = b
	})
	return w.result
}

// autovacuumWorkers lists what PostgreSQL's autovacuum workers are doing,
// as "database: VACUUM ANALYZE table"; nil when none runs or on error. A
// worker still choosing its table shows no query yet and is left out.
func autovacuumWorkers(ctx context.Context, conn *pgx.Conn) []string {
	if conn == nil {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT coalesce(datname, ''), regexp_replace(coalesce(query, ''), '^autovacuum: ', '')
		FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND coalesce(query, '') <> ''`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var db, q string
		if rows.Scan(&db, &q) == nil {
			out = append(out, db+": "+q)
		}
	}
	return out
}

func checkpoints(ctx context.Context, conn *pgx.Conn) int64 {
	if conn == nil {
		return 0
	}
	var n int64
	_ = conn.QueryRow(ctx, `SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`).Scan(&n)
	return n
}

// jvmCPU is a JVM's CPU seconds, and those of its JIT compiler threads
// (HotSpot's "C1/C2 CompilerThread"), from /proc; 0 when pid is 0 or gone.
func jvmCPU(pid int) (total, jit float64) {
	if pid == 0 {
		return 0, 0
	}
	if f := statFields(strconv.Itoa(pid)); f != nil {
		total = ticks(f)
	}
	tasks, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	for _, t := range tasks {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", t.Name(), "comm"))
		if err != nil || !strings.Contains(string(comm), "CompilerThre") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", t.Name(), "stat"))
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && i+2 < len(b) {
			if f := strings.Fields(string(b[i+2:])); len(f) > 12 {
				jit += ticks(f)
			}
		}
	}
	return total, jit
}

// ticks is utime + stime of /proc stat fields, in seconds.
func ticks(f []string) float64 {
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}

// awaitAutovacuum waits, up to limit, until no autovacuum worker runs, and
// says what it waited for. A latency round started while one works (on the
// workload's source table right after Debezium wrote it, say) shares two
// cores with it.
func awaitAutovacuum(ctx context.Context, env stacktest.Env, limit time.Duration) {
	conn, err := pgx.Connect(ctx, env.AdminURL)
	if err != nil {
		logf("settle: %v", err)
		return
	}
	defer conn.Close(ctx)
	t0 := time.Now()
	var seen []string
	for {
		w := autovacuumWorkers(ctx, conn)
		if len(w) == 0 {
			break
		}
		for _, x := range w {
			if !slices.Contains(seen, x) {
				seen = append(seen, x)
			}
		}
		if time.Since(t0) > limit {
			logf("settle: autovacuum still running after %s (%s); going on", limit, strings.Join(w, "; "))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(seen) > 0 {
		logf("settle: waited %s for autovacuum (%s)", time.Since(t0).Round(100*time.Millisecond), strings.Join(seen, "; "))
	}
}

// vacuumSource vacuums and analyses the workload's source table, which
// Debezium read and autovacuum would otherwise visit during a measurement.
func vacuumSource(ctx context.Context, env stacktest.Env, w Workload) {
	conn, err := pgx.Connect(ctx, sourceURL(env, w.source()))
	if err != nil {
		logf("settle: %v", err)
		return
	}
	defer conn.Close(ctx)
	t0 := time.Now()
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) public.orders`); err != nil {
		logf("settle: vacuum of the source table: %v", err)
		return
	}
	logf("settle: source table vacuumed and analysed in %s", time.Since(t0).Round(10*time.Millisecond))
}
