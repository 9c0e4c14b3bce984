//go:build integration

package sink_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The benchmarks read CPU time from /proc as well as the wall clock: on a
// shared 2-core machine the wall clock measures the neighbours too, while
// CPU per row measures the work, and CPU over wall time says whether a run
// was bound by the cores.

// procCPU reads utime+stime of a process, and with children also the CPU
// of its children that have exited (cutime+cstime), from /proc/PID/stat.
// ok is false when the process is gone or not on this machine.
func procCPU(pid int, children bool) (cpu time.Duration, ppid int, ok bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// Fields after the command's closing parenthesis: ppid is the 2nd,
	// utime, stime, cutime and cstime the 12th to 15th, in clock ticks of
	// 10 ms.
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ = strconv.Atoi(f[1])
	var ticks int64
	last := 12
	if children {
		last = 14
	}
	for i := 11; i <= last; i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, ppid, true
}

// serverCPU returns a reader of the CPU time the whole PostgreSQL server
// (postmaster, backends, WAL writer, checkpointer, and the backends that
// exited meanwhile) has used; it reads -1 when the server is not local.
func serverCPU(b *testing.B, pool *pgxpool.Pool) func() time.Duration {
	var backend int
	if err := pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	_, postmaster, ok := procCPU(backend, false)
	return func() time.Duration {
		if !ok {
			return -1
		}
		total, _, alive := procCPU(postmaster, true)
		if !alive {
			return -1
		}
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, path := range stats {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			if cpu, ppid, ok := procCPU(pid, false); ok && ppid == postmaster {
				total += cpu
			}
		}
		return total
	}
}

// selfCPU is the CPU time this process used so far: all threads, GC
// included.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter measures one timed section: wall time, the server's CPU and
// this process's CPU.
type cpuMeter struct {
	b      *testing.B
	server func() time.Duration
	t0     time.Time
	pg0    time.Duration
	self0  time.Duration
}

func startCPU(b *testing.B, server func() time.Duration) *cpuMeter {
	return &cpuMeter{b: b, server: server, t0: time.Now(), pg0: server(), self0: selfCPU(b)}
}

// report ends the section and reports rows/s, the CPU per row of the
// server and of this process (the client: pgsink's side), and how many
// of the machine's cores the two kept busy on average.
func (m *cpuMeter) report(rows int) (rate float64) {
	elapsed := time.Since(m.t0)
	pg, self := m.server()-m.pg0, selfCPU(m.b)-m.self0
	rate = float64(rows) / elapsed.Seconds()
	m.b.ReportMetric(rate, "rows/s")
	m.b.ReportMetric(float64(self.Microseconds())/float64(rows), "client-cpu-µs/row")
	if m.pg0 >= 0 {
		m.b.ReportMetric(float64(pg.Microseconds())/float64(rows), "pg-cpu-µs/row")
		m.b.ReportMetric((pg+self).Seconds()/elapsed.Seconds(), "cores-busy")
	}
	return rate
}
