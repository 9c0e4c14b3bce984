package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// postgresCPU returns the CPU seconds the stack's PostgreSQL has used so
// far: its postmaster's own and reaped children's time plus its live
// children's (backends, walwriter, checkpointer). The difference over a run
// is what the target side cost, which pgsink's own CPU does not show. 0 when
// it cannot be read.
func postgresCPU(ctx context.Context, env stacktest.Env) float64 {
	conn, err := pgx.Connect(ctx, env.AdminURL)
	if err != nil {
		return 0
	}
	var dir string
	err = conn.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dir)
	conn.Close(ctx)
	if err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	master := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	total := 0.0
	if f := statFields(master); f != nil {
		// utime, stime, cutime, cstime: backends that exited were reaped by
		// the postmaster and count in its children's time.
		for _, i := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseFloat(f[i], 64)
			total += v
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		f := statFields(p.Name())
		if f == nil || f[1] != master {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		total += u + s
	}
	return total / 100 // USER_HZ
}

// statFields returns /proc/PID/stat's fields after the command name (index
// 0 is the state, 1 the parent pid, 11 utime), or nil.
func statFields(pid string) []string {
	if _, err := strconv.Atoi(pid); err != nil {
		return nil
	}
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// walBytes is the whole server's WAL written so far (pg_stat_wal): the
// difference over a drain is what it logged, the source being idle then.
// 0 when it cannot be read.
func walBytes(ctx context.Context, env stacktest.Env) float64 {
	conn, err := pgx.Connect(ctx, env.AdminURL)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n float64
	if err := conn.QueryRow(ctx, `SELECT wal_bytes::float8 FROM pg_stat_wal`).Scan(&n); err != nil {
		return 0
	}
	return n
}
