//go:build integration

package faults

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
)

// long reports whether the long form runs (PGSINK_FAULTS=long, make faults).
func long(t *testing.T) {
	if os.Getenv("PGSINK_FAULTS") != "long" {
		t.Skip("long scenario: runs with PGSINK_FAULTS=long (make faults)")
	}
}

// supervise keeps one instance running — restarting it whenever it dies,
// as a process supervisor would — until the workload is done and the target
// equals the source, or until timeout. It counts failpoint kills.
// The workload, unbounded, is halted once minKills kills happened or after
// loadFor.
func (s *scenario) supervise(timeout time.Duration, maxRestarts, minKills int, loadFor time.Duration) bool {
	deadline := time.Now().Add(timeout)
	stopLoad := time.Now().Add(loadFor)
	var current *proc
	for time.Now().Before(deadline) {
		if !s.load.finished() && (s.result.Faults >= minKills || time.Now().After(stopLoad)) {
			s.load.halt()
		}
		if current == nil || current.exited() {
			if current != nil {
				if !current.killedByFailpoint() {
					s.t.Logf("%s: %s ended unexpectedly: %s", s.name, current.name, current.exitProblem())
					return false
				}
				s.fault()
			}
			if len(s.procs) > maxRestarts {
				s.t.Logf("%s: more than %d restarts", s.name, maxRestarts)
				return false
			}
			current = s.start(fmt.Sprintf("i%d", len(s.procs)+1))
		}
		if s.load.finished() && s.waitQuiet(time.Second) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// Scenario 1: pgsink SIGKILLs itself at a failpoint once the initial
// snapshot is swept; a supervisor restarts it until the workload is applied.
func TestFaults1Failpoints(t *testing.T) {
	failpointScenario(t, inStreaming, config.EncodingJSON)
}

// Scenario 1a: scenario 1 over Avro.
func TestFaults1FailpointsAvro(t *testing.T) {
	long(t)
	failpointScenario(t, inStreaming, config.EncodingAvro)
}

// Scenario 1s: the same failpoints armed while Debezium's initial snapshot
// runs, so pgsink dies again and again while it applies the snapshot.
func TestFaults1FailpointsDuringSnapshot(t *testing.T) {
	long(t)
	failpointScenario(t, inSnapshot, config.EncodingJSON)
}

func failpointScenario(t *testing.T, aim phase, enc config.Encoding) {
	for _, point := range []string{"before-commit", "after-commit", "after-kafka-commit"} {
		t.Run(point, func(t *testing.T) {
			// The shortest session timeout the broker allows: a killed
			// member's partitions are held until it expires.
			s := newScenario(t, "1"+aim.suffix()+encodingSuffix(enc)+" kill -9 at "+point, scenarioOptions{sessionMS: 6000, aim: aim, encoding: enc})
			s.result.FaultKinds = "SIGKILL at " + point
			// The snapshot's batches are many: a lower rate keeps its
			// restarts, each a session timeout long, in bounds.
			rate, timeout := "0.1", 3*time.Minute
			if aim == inSnapshot {
				rate, timeout = "0.03", 6*time.Minute
			}
			s.killAtFailpoints(point+":"+rate, timeout, 4)
		})
	}
}

// Scenario 1t: scenario 1 under apply.consistency: transaction, its three
// failpoints armed at once in one run (the resolver's transaction has a
// before-commit point too), with the bank workload and the T invariant.
func TestFaults1tFailpoints(t *testing.T) {
	long(t)
	s := newScenario(t, "1t kill -9 at before-commit, after-commit, after-kafka-commit (transaction mode)", scenarioOptions{sessionMS: 6000, transaction: true})
	s.result.FaultKinds = "SIGKILL at a failpoint"
	points := "before-commit:0.03,after-commit:0.03,after-kafka-commit:0.03"
	if localPath() {
		points += ",local-after-take:0.06,local-after-commit:0.06"
	}
	s.killAtFailpoints(points, 3*time.Minute, 6)
	if localPath() {
		s.checkLocalPath("local-after-take", "local-after-commit")
	}
}

// Scenario 1ta: scenario 1t over Avro: the connector on Apicurio's Avro
// converter, so the transaction topic's BEGIN and END are Avro too, read by
// the resolver through the registry. (txTrace, which explains a failed T,
// reads the topics as JSON: under Avro it finds no END to explain.)
func TestFaults1tFailpointsAvro(t *testing.T) {
	long(t)
	s := newScenario(t, "1ta kill -9 at before-commit, after-commit, after-kafka-commit (transaction mode, Avro)", scenarioOptions{sessionMS: 6000, transaction: true, encoding: config.EncodingAvro})
	s.result.FaultKinds = "SIGKILL at a failpoint"
	s.killAtFailpoints("before-commit:0.03,after-commit:0.03,after-kafka-commit:0.03", 3*time.Minute, 6)
}

// Scenario 1p: scenario 1 with apply.pipeline 2, its three failpoints
// armed at once in one run: a kill lands between a partition's
// transactions in flight, before or after either commits.
func TestFaults1pFailpoints(t *testing.T) {
	long(t)
	s := newScenario(t, "1p kill -9 at before-commit, after-commit, after-kafka-commit (apply.pipeline 2)", scenarioOptions{sessionMS: 6000, pipeline: 2})
	s.result.FaultKinds = "SIGKILL at a failpoint"
	s.killAtFailpoints("before-commit:0.03,after-commit:0.03,after-kafka-commit:0.03", 3*time.Minute, 6)
	s.checkPipelined()
}

// killAtFailpoints runs one instance with the failpoints armed (a
// PGSINK_FAILPOINTS value), restarting it whenever it kills itself, until
// the workload, halted after minKills kills or 40 s, is applied; then
// checks the invariants.
func (s *scenario) killAtFailpoints(failpoints string, timeout time.Duration, minKills int) {
	s.load.run(0, 3*time.Millisecond)
	s.aimFaults()
	s.extraEnv = []string{"PGSINK_FAILPOINTS=" + failpoints}
	quiet := s.supervise(timeout, 80, minKills, 40*time.Second)
	s.load.halt()
	s.stopAll()
	s.checkAll(quiet, 0)
	if s.result.Faults == 0 {
		s.t.Errorf("no failpoint fired: the scenario tested nothing")
	}
	s.checkAimed()
}

// checkLocalPath, under PGSINK_FAULTS_TX_LOCAL=1, fails the scenario when
// no instance took the local path, or, with points (failpoints of it), when
// none of them fired: it would then have tested the staging path only.
// Which of them fires is chance (a run stops after a few kills of any
// point): each is logged with its count.
func (s *scenario) checkLocalPath(points ...string) {
	var logs strings.Builder
	for _, p := range s.procs {
		logs.WriteString(p.Logs())
	}
	all := logs.String()
	s.t.Logf("%s: local path taken %d times, left %d times", s.name, strings.Count(all, "partition takes the local path"), strings.Count(all, "partition leaves the local path"))
	if !strings.Contains(all, "partition takes the local path") {
		s.t.Errorf("%s: no partition took the local path", s.name)
	}
	fired := 0
	for _, point := range points {
		n := strings.Count(all, "failpoint "+point+": SIGKILL")
		s.t.Logf("%s: failpoint %s fired %d times", s.name, point, n)
		fired += n
	}
	if len(points) > 0 && fired == 0 {
		s.t.Errorf("%s: none of the failpoints %v fired", s.name, points)
	}
}

// waitOwned waits until the live instances own every partition between them,
// each at least one.
func (s *scenario) waitOwned(partitions int, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		total, each := 0.0, true
		for _, p := range s.live() {
			n := p.metric("pgsink_partitions_owned")
			total += n
			each = each && n >= 1
		}
		if int(total) == partitions && each {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Fatalf("%s: partitions not spread over the live instances within %s", s.name, timeout)
}

// Scenario 3: one of three instances is paused (SIGSTOP) longer than the
// session timeout, so the group gives its partitions away; resumed
// (SIGCONT), its in-flight batch must be fenced, and nothing applied twice.
func TestFaults3Zombie(t *testing.T) {
	zombieScenario(t, inStreaming, false)
}

// Scenario 3t: scenario 3 under apply.consistency: transaction, with the
// bank workload and the T invariant; the zombie may hold the resolver.
func TestFaults3tZombie(t *testing.T) {
	long(t)
	zombieScenario(t, inStreaming, true)
}

// Scenario 3s: the same pause while the instances apply the initial
// snapshot.
func TestFaults3ZombieDuringSnapshot(t *testing.T) {
	long(t)
	zombieScenario(t, inSnapshot, false)
}

func zombieScenario(t *testing.T, aim phase, transaction bool) {
	// Three partitions of each topic (table and outbox): six in all; in
	// transaction mode the accounts', the bank tables' and the
	// transaction topic's.
	name := "3" + aim.suffix() + " SIGSTOP past session timeout"
	if transaction {
		name = "3t SIGSTOP past session timeout (transaction mode)"
	}
	s := newScenario(t, name, scenarioOptions{partitions: 3, sessionMS: 6000, aim: aim, transaction: transaction})
	partitions := s.partitions(3)
	s.result.FaultKinds = "SIGSTOP 15 s + SIGCONT"
	// As DESIGN.md asks of deployments: the server ends a zombie's idle
	// transaction, so the new owner's claim does not wait for the zombie
	// and the zombie's resumed write meets the new epoch.
	s.exec(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET idle_in_transaction_session_timeout = %L', current_database(), '3s'); END $$`)
	a, b, c := s.start("a"), s.start("b"), s.start("c")
	_ = a
	_ = c
	s.load.run(0, 2*time.Millisecond)
	if aim == inSnapshot {
		// The first pause falls at once, while the snapshot is applied;
		// every instance must own some of it.
		s.waitOwned(partitions, 90*time.Second)
		s.aimFaults()
	} else {
		s.aimFaults()
		s.waitOwned(partitions, 90*time.Second)
	}
	fenced := false
	for attempt := 0; attempt < 2 && !fenced; attempt++ {
		if attempt > 0 || aim == inStreaming {
			time.Sleep(3 * time.Second)
		}
		zombie := b
		// Try to freeze the zombie inside an apply transaction, past its
		// offset compare-and-set: a SHARE lock on the audit table holds
		// every instance at its audit insert; the zombie is stopped there,
		// then the lock goes and the others carry on, and the server ends
		// the zombie's idle transaction. In practice librdkafka revokes on
		// SIGCONT before the worker runs again (see below), so this rarely
		// fences; it does make the zombie hold a transaction and row lock
		// across the rebalance, which the invariants then judge.
		held, err := s.target.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := held.Exec(context.Background(), `LOCK TABLE pgsink.apply_audit IN SHARE MODE`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		zombie.signal(syscall.SIGSTOP)
		s.fault() // while the lock holds every apply: in the phase aimed at
		if err := held.Rollback(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGSTOP %s (pid %d)", zombie.name, zombie.cmd.Process.Pid)
		time.Sleep(15 * time.Second)
		zombie.signal(syscall.SIGCONT)
		t.Logf("SIGCONT %s", zombie.name)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) && !fenced {
			fenced = zombie.metric("pgsink_fenced_batches_total") > 0 || strings.Contains(zombie.Logs(), "partition claimed by another instance")
			time.Sleep(500 * time.Millisecond)
		}
		s.waitOwned(partitions, 90*time.Second)
	}
	sessionTimeouts := strings.Count(b.Logs(), "SESSTMOUT")
	t.Logf("after %d pauses: fenced on resume %v; the zombie's own client saw its session time out %d time(s) and revoked first", s.result.Faults, fenced, sessionTimeouts)
	if !fenced {
		// librdkafka notices the expired session on SIGCONT and revokes
		// before the worker writes, so the pause alone rarely reaches the
		// fence. Make the zombie the fence's case directly: another owner
		// claims one of b's partitions behind its back (a new epoch, as an
		// instance on the far side of a network partition would), while b
		// still holds it in Kafka.
		// Any of b's partitions, of either topic: after the rebalances b
		// may hold only outbox partitions.
		stolen, err := s.target.Exec(context.Background(), `UPDATE pgsink.offsets SET epoch = epoch + 1, owner = 'faults-thief:0'
			WHERE (topic, partition) = (SELECT topic, partition FROM pgsink.offsets WHERE owner LIKE '%:' || $1 ORDER BY topic, partition LIMIT 1)`,
			fmt.Sprint(b.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		s.result.Faults++
		s.result.FaultKinds += ", epoch stolen under a live owner"
		t.Logf("stole %d partition(s) of b", stolen.RowsAffected())
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && !fenced {
			fenced = b.metric("pgsink_fenced_batches_total") > 0
			time.Sleep(300 * time.Millisecond)
		}
		// The fenced partition stays parked on b: hand it over.
		s.scrape(b)
		b.stop(60 * time.Second)
	}
	s.load.halt()
	quiet := s.waitQuiet(2 * time.Minute)
	s.stopAll()
	s.result.Fenced = max(s.result.Fenced, countFenced(b))
	s.checkAll(quiet, 0)
	s.checkAimed()
	if !fenced {
		t.Errorf("the zombie was never fenced (no pgsink_fenced_batches_total > 0, no fencing in its log)")
	}
}

// countFenced counts the fencing lines of an instance's log (its metrics
// die with it).
func countFenced(p *proc) int {
	return strings.Count(p.Logs(), "partition claimed by another instance")
}

// stackDir is the stack whose services the scenarios kill: the one the
// tests' addresses come from.
func stackDir() string {
	if d := os.Getenv("PGSINK_STACK_DIR"); d != "" {
		return d
	}
	return repoRoot() + "/.stack"
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; {
		if _, err := os.Stat(d + "/go.mod"); err == nil {
			return d
		}
		parent := d[:max(strings.LastIndexByte(d, '/'), 1)]
		if parent == d {
			return dir
		}
		d = parent
	}
}

// Scenario 7: the Kafka Connect worker is killed with -9 mid-stream and
// restarted; Debezium resumes from its last flushed source offset, so it
// re-emits events at new Kafka offsets, which the version guard and the
// tombstones must absorb.
func TestFaults7ConnectKill(t *testing.T) { connectKillScenario(t, config.EncodingJSON, false) }

// Scenario 7t: scenario 7 under apply.consistency: transaction, with the
// bank workload and the T invariant: one Connect kill -9, and one pgsink
// instance killed with -9 while Connect is down: the bank's source
// transactions stay whole through kill -9 of Connect and of pgsink.
func TestFaults7tConnectKill(t *testing.T) {
	long(t)
	connectKillScenario(t, config.EncodingJSON, true)
}

// Scenario 7a: scenario 7 over Avro.
func TestFaults7ConnectKillAvro(t *testing.T) {
	long(t)
	connectKillScenario(t, config.EncodingAvro, false)
}

func connectKillScenario(t *testing.T, enc config.Encoding, transaction bool) {
	name := "7" + encodingSuffix(enc) + " Kafka Connect kill -9"
	if transaction {
		name = "7t Kafka Connect kill -9, and pgsink's (transaction mode)"
	}
	s := newScenario(t, name, scenarioOptions{encoding: enc, transaction: transaction})
	s.result.FaultKinds = "Connect worker SIGKILL + restart"
	a := s.start("a")
	s.start("b")
	s.load.run(0, 2*time.Millisecond)
	s.aimFaults()
	// In transaction mode one Connect kill, a pgsink instance killed while
	// Connect is down: the restart of Connect is the scenario's cost.
	kills := 2
	if transaction {
		kills = 1
	}
	for range kills {
		time.Sleep(4 * time.Second)
		before := s.topicEnd()
		killService(t, "connect")
		s.fault()
		time.Sleep(3 * time.Second) // the workload goes on; the slot keeps the WAL
		if transaction {
			// Its partitions (maybe the resolver) move once its session
			// expires, Debezium's re-emitted events in them.
			s.scrape(a)
			a.signal(syscall.SIGKILL)
			s.fault()
			s.result.FaultKinds += ", a pgsink instance SIGKILL while Connect is down"
			s.start("c")
		}
		stackUp(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := s.st.Connect.WaitRunning(ctx, s.connector, 2*time.Minute); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		t.Logf("Connect restarted; topic end %d before the kill", before)
	}
	time.Sleep(3 * time.Second)
	s.load.halt()
	quiet := s.waitQuiet(3 * time.Minute)
	// Re-emitted events: records in Kafka beyond one per source change
	// (tombstones aside) — a lower bound of the stale events pgsink met.
	s.result.FaultKinds += fmt.Sprintf(" (≥%d table records re-emitted)", max(0, int(s.topicEnd())-s.load.accountEvents()-s.load.deletes()))
	s.stopAll()
	s.checkAll(quiet, 0)
}

// Scenario 9: `pgsink replay --table --from earliest` while two instances run
// and the workload goes on. The replay re-applies every record: the guard
// skips the stale ones. The table topic's audit rows are set aside first
// (the pipeline quiet) because a replay applies each offset a second time by
// design; the fresh audit then proves each offset is applied once after the
// rewind. The outbox topic is not replayed: its audit stays.
func TestFaults9Replay(t *testing.T) { replayScenario(t, config.EncodingJSON) }

// Scenario 9a: scenario 9 over Avro.
func TestFaults9ReplayAvro(t *testing.T) {
	long(t)
	replayScenario(t, config.EncodingAvro)
}

func replayScenario(t *testing.T, enc config.Encoding) {
	s := newScenario(t, "9"+encodingSuffix(enc)+" replay from earliest while running", scenarioOptions{encoding: enc})
	s.result.FaultKinds = "replay --table --from earliest"
	s.start("a")
	s.start("b")
	s.load.run(300, 3*time.Millisecond)
	s.load.wait()
	if !s.waitQuiet(2 * time.Minute) {
		t.Fatal("not quiet before the replay")
	}
	s.exec(`CREATE TABLE pgsink.apply_audit_before_replay AS SELECT * FROM pgsink.apply_audit WHERE topic = $1`, s.topic)
	s.exec(`DELETE FROM pgsink.apply_audit WHERE topic = $1`, s.topic)
	s.load.run(400, 3*time.Millisecond)
	out, err := runCommand(3*time.Minute, []string{"TARGET_URL=" + s.targetURL, "METRICS_PORT=0"},
		"replay", "--config", s.configPath, "--table", "public.accounts", "--from", "earliest", "--wait", "--wait-timeout", "150s")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	t.Logf("replay:\n%s", out)
	s.result.Faults++
	s.result.Replays++
	s.load.wait()
	quiet := s.waitQuiet(2 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, 0)
	if len(s.logsContaining("rewound by a replay: re-claimed")) == 0 {
		t.Errorf("no instance re-claimed a rewound partition: the replay did not reach the running instances")
	}
}

// Scenario 10: poison records interleaved with the workload: malformed JSON
// and a 5 MB value produced straight to the topic, and source rows the
// target's CHECK rejects. Each must be dead-lettered, nothing else.
func TestFaults10Poison(t *testing.T) {
	s := newScenario(t, "10 poison records", scenarioOptions{})
	s.result.FaultKinds = "malformed JSON, 5 MB value, unknown table, CHECK violation"
	s.start("a")
	s.start("b")
	s.load.run(0, 3*time.Millisecond)
	injected := 0
	ctx := context.Background()
	for round := range 2 {
		time.Sleep(2 * time.Second)
		s.produce(t, int32(round%3), []byte(`{"payload":{"id":`), []byte(`{"schema": {"type": "struct"`))
		s.produce(t, int32((round+1)%3), []byte(`{"payload":{"id":1}}`), []byte(`{"junk":"`+strings.Repeat("x", 5<<20)+`"}`))
		injected += 2
		// An unknown table: a well-formed change of a table no
		// configuration names, on the subscribed topic.
		gk, gv := s.ghostRecord(t)
		s.produce(t, int32((round+2)%3), gk, gv)
		injected++
		// A source row the target rejects; once dead-lettered, deleted in
		// the source so both sides end equal.
		id := 900000 + round
		s.st.Exec(`INSERT INTO public.accounts VALUES ($1, -1, 0, now(), NULL)`, id)
		injected++
		s.result.Faults += 4
		deadline := time.Now().Add(60 * time.Second)
		for {
			var n int
			if err := s.target.QueryRow(ctx, `SELECT count(*) FROM pgsink.dead_letters`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n >= injected {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d dead letters after 60 s, %d injected", n, injected)
			}
			time.Sleep(300 * time.Millisecond)
		}
		s.st.Exec(`DELETE FROM public.accounts WHERE id = $1`, id)
	}
	s.load.halt()
	quiet := s.waitQuiet(2 * time.Minute)
	s.stopAll()
	s.checkAll(quiet, injected)
	// Each kind is among the dead letters, with its reason, and counted in
	// the instances' metrics (none was killed, so the counts are whole).
	kinds := map[string]string{
		"malformed JSON":  `value LIKE '{"schema": {"type": "struct"%'`,
		"5 MB value":      `length(value) > 5000000`,
		"unknown table":   `position('"table":"ghosts"' in convert_from(value, 'UTF8')) > 0`,
		"CHECK violation": `error LIKE '%check constraint%'`,
	}
	for kind, where := range kinds {
		var n int
		var reason string
		if err := s.target.QueryRow(ctx, `SELECT count(*), coalesce(left(min(error), 200), '') FROM pgsink.dead_letters WHERE `+where).Scan(&n, &reason); err != nil {
			t.Fatalf("dead letters of kind %s: %v", kind, err)
		}
		if n != 2 {
			t.Errorf("%s: %d dead letters, want 2 (one a round)", kind, n)
		}
		t.Logf("dead-lettered %s: %d, e.g. %s", kind, n, reason)
	}
	if counted := s.deadLettersCounted(); counted != injected {
		t.Errorf("pgsink_dead_letters_total summed over the instances is %d, %d injected", counted, injected)
	}
}

// Scenario 8: an old range of the topic is produced again, old creates of
// keys deleted since included; the guard and the tombstones must make it a
// no-op.
func TestFaults8Republish(t *testing.T) {
	long(t)
	s := newScenario(t, "8 re-publish an old range", scenarioOptions{})
	republishScenario(t, s)
	s.checkAll(s.waitQuiet(2*time.Minute), 0)
}

// republishScenario runs the workload, then re-publishes every partition's
// first records and waits until the instances have consumed them.
func republishScenario(t *testing.T, s *scenario) {
	s.start("a")
	s.load.run(400, 2*time.Millisecond)
	s.load.wait()
	if !s.waitQuiet(2*time.Minute) && s.result.Expect != "fail" {
		t.Fatal("not quiet before re-publishing")
	}
	n := s.republish(t, 1500)
	s.result.Faults++
	s.result.FaultKinds = fmt.Sprintf("%d records of an old range re-published", n)
	t.Logf("re-published %d records", n)
	// Quiet again: the stored positions reach the topic's end.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var stored int64
		_ = s.target.QueryRow(context.Background(), `SELECT coalesce(sum(next_offset), 0) FROM pgsink.offsets WHERE topic = $1`, s.topic).Scan(&stored)
		// Every instance dead (the broken self-test's fate) ends the wait.
		if stored >= s.topicEnd() || len(s.live()) == 0 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.stopAll()
}

// TestFaultsSelfTestBrokenGuard breaks pgsink on purpose
// (PGSINK_TEST_BREAK=no-version-guard) and re-publishes an old range: the
// suite's checks must report the regression.
func TestFaultsSelfTestBrokenGuard(t *testing.T) {
	s := newScenario(t, "self-test: version guard disabled + re-publish", scenarioOptions{})
	s.extraEnv = []string{"PGSINK_TEST_BREAK=no-version-guard"}
	s.result.Expect = "fail"
	republishScenario(t, s)
	s.checkAllExpectingFailure(s.waitQuiet(20*time.Second), 0)
}

// checkAllExpectingFailure runs the checks on a pipeline broken on purpose:
// the test passes only if at least one invariant check fails.
func (s *scenario) checkAllExpectingFailure(quiet bool, injected int) {
	s.evaluate(quiet, injected)
	var failed []string
	for _, c := range s.checked() {
		if v := s.result.Checks[c]; !v.OK {
			failed = append(failed, c+": "+v.Detail)
		}
	}
	if len(failed) == 0 {
		s.t.Errorf("pgsink broken on purpose, yet every invariant check passed: the checks are blind")
		return
	}
	s.t.Logf("as required, the broken pipeline failed %d check(s):\n%s", len(failed), strings.Join(failed, "\n"))
}
