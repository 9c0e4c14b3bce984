//go:build integration

package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// restartConnector asks Connect to restart the connector and its tasks,
// for a task that gave up while a service was down.
func (s *scenario) restartConnector() {
	req, _ := http.NewRequest(http.MethodPost, s.st.Connect.URL+"/connectors/"+url.PathEscape(s.connector)+"/restart?includeTasks=true&onlyFailed=true", nil)
	client := http.Client{Timeout: 30 * time.Second}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// waitConnector waits for the Debezium connector to run again, restarting
// it once if it failed during the outage.
func (s *scenario) waitConnector() {
	s.t.Helper()
	ctx := context.Background()
	for attempt := 0; attempt < 3; attempt++ {
		if err := s.st.Connect.WaitRunning(ctx, s.connector, 90*time.Second); err == nil {
			return
		} else {
			s.t.Logf("connector not running (attempt %d): %.300s", attempt+1, err)
		}
		s.restartConnector()
		time.Sleep(2 * time.Second)
	}
	s.t.Fatalf("%s: the Debezium connector did not run again", s.name)
}

// Scenario 5: the Kafka broker killed with -9 mid-stream and restarted;
// 5s (snapshot_integration_test.go) kills it during the snapshot.
func TestFaults5BrokerKill(t *testing.T) {
	long(t)
	s := newScenario(t, "5 Kafka broker kill -9", scenarioOptions{})
	s.result.FaultKinds = "broker SIGKILL + restart"
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	s.aimFaults()
	killService(t, "kafka")
	s.fault()
	time.Sleep(5 * time.Second)
	stackUp(t)
	s.waitConnector()
	time.Sleep(5 * time.Second)
	s.load.halt()
	quiet := s.waitQuiet(3 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
}

// pgData returns the stack's PostgreSQL data folder, from the comment
// stack.sh writes into its env file.
func pgData(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(stackDir(), "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if home, ok := strings.CutPrefix(sc.Text(), "# PostgreSQL's data and log: "); ok {
			return filepath.Join(strings.TrimSpace(home), "data")
		}
	}
	t.Fatal("the stack's env file names no PostgreSQL folder")
	return ""
}

// Scenario 6: PostgreSQL (source and target alike) restarted in immediate
// mode — a crash and recovery — mid-stream.
func TestFaults6PostgresRestart(t *testing.T) {
	long(t)
	postgresRestartScenario(t, false, false)
}

// Scenario 6t: scenario 6 under apply.consistency: transaction, with the
// bank workload and the T invariant: the crash takes the resolver's, the
// stagers', the workload's and the reader's connections alike; the reader
// reconnects and must keep checking snapshots after the restart.
func TestFaults6tPostgresRestart(t *testing.T) {
	long(t)
	postgresRestartScenario(t, true, false)
}

// Scenario 6tu: scenario 6t with apply.transaction.staging: unlogged. The
// crash empties tx_staged while the stagers' offsets say their records are
// staged: the partitions must see the reset (the staging marker) and stage
// again from past what the resolver applied, and the resolver must apply
// no transaction in part; beside 6t's invariants, tx_staged is unlogged and
// the staging generation moved on.
func TestFaults6tuPostgresRestart(t *testing.T) {
	long(t)
	postgresRestartScenario(t, true, true)
}

func postgresRestartScenario(t *testing.T, transaction, unlogged bool) {
	name := "6 PostgreSQL immediate restart"
	if transaction {
		name = "6t PostgreSQL immediate restart (transaction mode)"
	}
	if unlogged {
		name = "6tu PostgreSQL immediate restart (transaction mode, unlogged staging)"
	}
	s := newScenario(t, name, scenarioOptions{transaction: transaction, unlogged: unlogged})
	s.result.FaultKinds = "pg_ctl -m immediate restart"
	s.start("a")
	s.start("b")
	if transaction {
		// In streaming: a crash before Debezium flushed its first offset
		// makes it take the snapshot again, whose rows a reader sees as
		// they are applied (docs/transactions.md), not whole transactions.
		s.aimFaults()
	}
	// The workload's connection dies with the server: it runs in bursts.
	s.load.run(250, 3*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	data := pgData(t)
	bin := os.Getenv("PGSINK_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	args := []string{filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "-t", "120", "-l", filepath.Join(filepath.Dir(data), "postgres.log"), "restart"}
	if os.Getuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.load.ignoreErrors.Store(true)
	var before int
	if transaction {
		before = s.tx.reader.Seen()
		s.tx.reader.Outage()
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctl restart: %v\n%s", err, out)
	}
	s.result.Faults++
	s.load.wait()
	s.load.ignoreErrors.Store(false)
	var restarted int
	if transaction {
		restarted = s.tx.reader.Seen()
		s.tx.reader.EndOutage()
		if err := s.load.settle(ctx); err != nil {
			t.Fatalf("settle the workload's last transaction: %v", err)
		}
	}
	s.reconnect()
	s.waitConnector()
	s.load.run(250, 3*time.Millisecond)
	s.load.wait()
	quiet := s.waitQuiet(3 * time.Minute)
	if transaction {
		// The reader's snapshots after the restart count only if it
		// reconnected: it must have checked some, and its outage ended.
		after := s.tx.reader.Seen() - restarted
		failed, ongoing := s.tx.reader.OutageErrors()
		s.result.FaultKinds += fmt.Sprintf("; reader: %d snapshots before the restart, %d after, %d reads failed during it", before, after, failed)
		t.Logf("reader: %d snapshots before the restart, %d during it, %d after; %d reads failed during it", before, restarted-before, after, failed)
		if after == 0 || ongoing {
			t.Errorf("%s: the reader checked %d snapshots after the restart (outage still on: %v): it did not reconnect", s.name, after, ongoing)
		}
	}
	if transaction {
		// The staging marker has tx_staged's persistence: unlogged, the
		// crash empties both and the partitions move the generation on
		// and rewind; logged, it keeps both, and nothing rewinds.
		var persistence, marker string
		var generation int64
		if err := s.target.QueryRow(ctx, `SELECT (SELECT relpersistence::text FROM pg_class WHERE oid = 'pgsink.tx_staged'::regclass),
			(SELECT relpersistence::text FROM pg_class WHERE oid = 'pgsink.tx_staging_marker'::regclass),
			(SELECT generation FROM pgsink.tx_staging_generation)`).Scan(&persistence, &marker, &generation); err != nil {
			t.Fatal(err)
		}
		rewound := s.logsContaining("rewound to stage its records again")
		reset := s.logsContaining("the staging table was reset")
		s.result.FaultKinds += fmt.Sprintf("; tx_staged persistence %s, marker %s, staging generation %d, reset seen in %v, rewound in %v", persistence, marker, generation, reset, rewound)
		t.Logf("tx_staged persistence %s, marker %s, staging generation %d after the restart; instances that saw a reset: %v; that rewound a partition: %v",
			persistence, marker, generation, reset, rewound)
		if want := map[bool]string{true: "u", false: "p"}[unlogged]; persistence != want || marker != want {
			t.Errorf("%s: tx_staged persistence %q and the marker's %q, want both %q", s.name, persistence, marker, want)
		}
		switch {
		case unlogged && generation < 2:
			t.Errorf("%s: staging generation %d after a crash; want it moved on (the crash empties the unlogged marker)", s.name, generation)
		case !unlogged && (generation != 1 || len(reset) > 0 || len(rewound) > 0):
			t.Errorf("%s: staging generation %d after a crash, a reset seen in %v, partitions rewound in %v; want generation 1, none (a logged tx_staged keeps every row)",
				s.name, generation, reset, rewound)
		}
	}
	s.stopAll()
	s.checkAll(quiet, 0)
}

// reconnect replaces the target connection after a server restart.
func (s *scenario) reconnect() {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := pgx.Connect(ctx, s.targetURL)
		if err == nil {
			s.target = conn
			s.t.Cleanup(func() { conn.Close(context.Background()) })
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("reconnect: %v", err)
		}
		time.Sleep(time.Second)
	}
}
