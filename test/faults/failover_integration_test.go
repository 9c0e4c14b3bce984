//go:build integration

package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsink/pgsink/test/stacktest"
)

// Scenario 6f: the target fails over to an asynchronous standby that has
// not received the last commits. pgsink reaches the target through one
// address (a proxy, as a virtual IP or a DNS name would be); the standby is
// promoted while pgsink still commits on the primary, the primary is then
// stopped and the address moved. What pgsink committed on the primary after
// the promotion is gone: data, positions and bookkeeping alike, since they
// commit together (I1). Every instance holds, in memory, positions the
// target no longer has; each must find that out and read again from what
// the target says, never write on past a hole.
func TestFaults6fTargetFailover(t *testing.T) {
	long(t)
	targetFailoverScenario(t, false, false)
}

// Scenario 6tf: scenario 6f under apply.consistency: transaction. The
// standby lacks staged records, resolved transactions and the resolver's
// position that the primary had; logged staging keeps what the standby
// received, so nothing rewinds.
func TestFaults6tfTargetFailover(t *testing.T) {
	long(t)
	targetFailoverScenario(t, true, false)
}

// Scenario 6tfu: scenario 6tf with apply.transaction.staging: unlogged. A
// promoted standby has every unlogged table empty (their contents are not
// replicated), as after a crash: the partitions must see the reset and
// stage again.
func TestFaults6tfuTargetFailover(t *testing.T) {
	long(t)
	targetFailoverScenario(t, true, true)
}

func targetFailoverScenario(t *testing.T, transaction, unlogged bool) {
	name := "6f target failover to an asynchronous standby"
	switch {
	case transaction && unlogged:
		name = "6tfu target failover to an asynchronous standby (transaction mode, unlogged staging)"
	case transaction:
		name = "6tf target failover to an asynchronous standby (transaction mode)"
	}
	pair := newStandbyPair(t)
	proxy := stacktest.NewProxy(t, pair.primaryAddr())
	targetURL, err := proxy.URL(pair.url(pair.primaryPort, "target"))
	if err != nil {
		t.Fatal(err)
	}
	s := newScenario(t, name, scenarioOptions{transaction: transaction, unlogged: unlogged, targetURL: targetURL})
	s.result.FaultKinds = "standby promoted while pgsink commits on the primary, primary stopped (immediate), target address moved to the standby"
	s.start("a")
	s.start("b")
	if transaction {
		s.aimFaults()
	}
	s.load.run(250, 3*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if transaction {
		s.tx.reader.Outage()
	}
	pair.promoteStandby()
	// pgsink goes on committing on the primary, which the standby no
	// longer follows: those commits are the ones the failover loses. A
	// third instance joins meanwhile, so that the claims of the rebalance
	// are lost too: their holders find the stored epochs below theirs.
	c := s.start("c")
	joined := time.Now().Add(time.Minute)
	for c.metric("pgsink_partitions_owned") < 1 && time.Now().Before(joined) {
		time.Sleep(200 * time.Millisecond)
	}
	if owned := c.metric("pgsink_partitions_owned"); owned < 1 {
		t.Fatalf("%s: instance c owns %v partitions a minute after it started", s.name, owned)
	}
	time.Sleep(time.Second)
	onPrimary := pair.storedPositions(ctx, pair.primaryPort)
	pair.stopPrimary()
	proxy.Retarget(pair.standbyAddr())
	failedOver := time.Now()
	s.result.Faults++
	onStandby := pair.storedPositions(ctx, pair.standbyPort)
	lost := onPrimary - onStandby
	s.result.FaultKinds += fmt.Sprintf("; stored positions summed: %d on the primary at its stop, %d on the promoted standby (%d records' progress lost)", onPrimary, onStandby, lost)
	t.Logf("stored positions summed: %d on the primary at its stop, %d on the promoted standby", onPrimary, onStandby)
	if lost <= 0 {
		// Nothing lost: the scenario would test a plain restart.
		t.Fatalf("%s: the standby lost no committed position (%d on the primary, %d on it): the failover tested nothing", s.name, onPrimary, onStandby)
	}
	s.load.wait()
	if transaction {
		s.tx.reader.EndOutage()
	}
	s.reconnect()
	s.load.run(250, 3*time.Millisecond)
	s.load.wait()
	quiet := s.waitQuiet(3 * time.Minute)
	wentBack := s.logsContaining("stored position went back under this instance's claim")
	claimLost := s.logsContaining("the target lost this instance's claim")
	s.result.FaultKinds += fmt.Sprintf("; quiet %s after the failover; positions seen gone back in %v, claims seen lost in %v", time.Since(failedOver).Round(time.Second), wentBack, claimLost)
	t.Logf("quiet %v, %s after the failover; positions seen gone back in %v; claims seen lost in %v; fenced in %v",
		quiet, time.Since(failedOver).Round(time.Second), wentBack, claimLost, s.logsContaining("partition fenced"))
	// Each is what the failover did: the instances must have seen it, and
	// said so, not taken it for another instance's claim.
	if len(wentBack)+len(claimLost) == 0 {
		t.Errorf("%s: no instance reported the target's positions or claims gone back", s.name)
	}
	if len(claimLost) == 0 {
		t.Errorf("%s: no instance reported a claim the target lost (instance c's claims were made after the promotion)", s.name)
	}
	if transaction {
		var generation int64
		if err := s.target.QueryRow(ctx, `SELECT generation FROM pgsink.tx_staging_generation`).Scan(&generation); err != nil {
			t.Fatal(err)
		}
		rewound := s.logsContaining("rewound to stage its records again")
		s.result.FaultKinds += fmt.Sprintf("; staging generation %d, rewound in %v", generation, rewound)
		switch {
		case unlogged && generation < 2:
			t.Errorf("%s: staging generation %d after the promotion; want it moved on (a promoted standby's unlogged tables are empty)", s.name, generation)
		case !unlogged && (generation != 1 || len(rewound) > 0):
			t.Errorf("%s: staging generation %d, partitions rewound in %v; want generation 1 and no rewind (logged staging is replicated with the positions)", s.name, generation, rewound)
		}
	}
	s.stopAll()
	s.checkAll(quiet, 0)
}

// standbyPair is a PostgreSQL server of the test's own, as the target, with
// an asynchronous streaming standby: the stack's server is the source and
// every other test's target, so it cannot fail over.
type standbyPair struct {
	t                        *testing.T
	bin, home                string
	primaryPort, standbyPort int
	primaryData, standbyData string
}

func newStandbyPair(t *testing.T) *standbyPair {
	t.Helper()
	bin := os.Getenv("PGSINK_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	// Below /var/tmp: the postgres user must enter every folder above the
	// data folders, which a root-owned test temp dir does not allow.
	home, err := os.MkdirTemp("/var/tmp", "pgsink-failover-")
	if err != nil {
		t.Fatal(err)
	}
	p := &standbyPair{t: t, bin: bin, home: home, primaryPort: freePort(t), standbyPort: freePort(t),
		primaryData: filepath.Join(home, "primary"), standbyData: filepath.Join(home, "standby")}
	t.Cleanup(func() {
		for _, data := range []string{p.primaryData, p.standbyData} {
			if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
				_, _ = p.pgCommand("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
			}
		}
		if t.Failed() {
			for _, log := range []string{"primary.log", "standby.log"} {
				if b, err := os.ReadFile(filepath.Join(home, log)); err == nil {
					t.Logf("%s:\n%s", log, tail(string(b), 30))
				}
			}
		}
		os.RemoveAll(home)
	})
	if os.Getuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", home).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v\n%s", home, err, out)
		}
	}
	p.run("initdb", "-D", p.primaryData, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
wal_level = replica
max_wal_senders = 5
max_connections = 100
log_min_messages = warning
`, p.primaryPort, home)
	p.appendFile(filepath.Join(p.primaryData, "postgresql.conf"), conf)
	p.run("pg_ctl", "-D", p.primaryData, "-l", filepath.Join(home, "primary.log"), "-w", "-t", "120", "start")
	p.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.primaryPort), "-U", "postgres", "-D", p.standbyData, "-R", "-X", "stream", "-c", "fast")
	// The copied configuration names the primary's port; the standby's
	// own comes last, so it wins.
	p.appendFile(filepath.Join(p.standbyData, "postgresql.conf"), fmt.Sprintf("port = %d\n", p.standbyPort))
	p.run("pg_ctl", "-D", p.standbyData, "-l", filepath.Join(home, "standby.log"), "-w", "-t", "120", "start")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url(p.primaryPort, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE target`); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *standbyPair) primaryAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.primaryPort))
}

func (p *standbyPair) standbyAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.standbyPort))
}

func (p *standbyPair) url(port int, db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

// promoteStandby ends the standby's recovery: from here on it takes writes
// and follows the primary no more.
func (p *standbyPair) promoteStandby() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.standbyData, "-w", "-t", "120", "promote")
}

// stopPrimary stops the primary as a crashed machine would, at once.
func (p *standbyPair) stopPrimary() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.primaryData, "-m", "immediate", "-w", "-t", "120", "stop")
}

// storedPositions is the sum of every stored position on one server: what
// the instances committed there, records and the transaction topic's
// markers alike.
func (p *standbyPair) storedPositions(ctx context.Context, port int) int64 {
	p.t.Helper()
	conn, err := pgx.Connect(ctx, p.url(port, "target"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sum int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0)::bigint FROM pgsink.offsets`).Scan(&sum); err != nil {
		p.t.Fatal(err)
	}
	return sum
}

func (p *standbyPair) run(tool string, args ...string) {
	p.t.Helper()
	if out, err := p.pgCommand(tool, args...); err != nil {
		p.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// pgCommand runs one of PostgreSQL's programs, as the postgres user when
// the test runs as root (initdb and postgres refuse root).
func (p *standbyPair) pgCommand(tool string, args ...string) (string, error) {
	argv := append([]string{filepath.Join(p.bin, tool)}, args...)
	if os.Getuid() == 0 {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *standbyPair) appendFile(path, text string) {
	p.t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		p.t.Fatal(err)
	}
}
