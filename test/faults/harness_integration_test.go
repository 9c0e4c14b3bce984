//go:build integration

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/test/stacktest"
)

// The source table: seq counts each row's updates, big is a TOASTed text
// stored out of line (STORAGE EXTERNAL) that most updates leave unchanged,
// so Debezium sends its unavailable-value placeholder (I7).
const sourceDDL = `CREATE TABLE public.accounts (
	id integer PRIMARY KEY,
	seq integer NOT NULL,
	balance numeric(14,2) NOT NULL,
	updated_at timestamptz NOT NULL,
	big text);
ALTER TABLE public.accounts ALTER COLUMN big SET STORAGE EXTERNAL;`

// The target table adds the version columns and a CHECK the source lacks:
// a row with seq = -1 is a poison record that must be dead-lettered.
const targetDDL = `CREATE TABLE public.accounts (
	id integer PRIMARY KEY,
	seq integer NOT NULL CHECK (seq <> -1),
	balance numeric(14,2) NOT NULL,
	updated_at timestamptz NOT NULL,
	big text,
	_pgsink_commit_lsn bigint, _pgsink_lsn bigint)`

// Invariant markers: the triggers RAISE with them, so a violation surfaces
// in a pgsink log (a failed apply) or a dead letter's error, and the checks
// find it there whatever pgsink did with the error.
const (
	markM = "faults-invariant-M"
	markV = "faults-invariant-V"
)

// versionTrigger (V): a row's version never goes backwards.
const versionTrigger = `CREATE FUNCTION public.faults_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW._pgsink_commit_lsn, NEW._pgsink_lsn) < (OLD._pgsink_commit_lsn, OLD._pgsink_lsn) THEN
    RAISE EXCEPTION '` + markV + `: row % version (%,%) -> (%,%)', OLD.id,
      OLD._pgsink_commit_lsn, OLD._pgsink_lsn, NEW._pgsink_commit_lsn, NEW._pgsink_lsn;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER faults_version_guard BEFORE UPDATE ON public.accounts
  FOR EACH ROW EXECUTE FUNCTION public.faults_version_guard();`

// offsetsTrigger (M): epochs never decrease; within an epoch next_offset
// never decreases, except on a replay's rewind (which also raises the epoch,
// but the prefix check keeps the rule explicit).
const offsetsTrigger = `CREATE FUNCTION pgsink.faults_offsets_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.epoch < OLD.epoch THEN
    RAISE EXCEPTION '` + markM + `: %[%] epoch % -> %', OLD.topic, OLD.partition, OLD.epoch, NEW.epoch;
  END IF;
  IF NEW.epoch = OLD.epoch AND NEW.next_offset < OLD.next_offset AND NEW.owner NOT LIKE 'replay:%' THEN
    RAISE EXCEPTION '` + markM + `: %[%] next_offset % -> % in epoch %', OLD.topic, OLD.partition,
      OLD.next_offset, NEW.next_offset, NEW.epoch;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER faults_offsets_guard BEFORE UPDATE ON pgsink.offsets
  FOR EACH ROW EXECUTE FUNCTION pgsink.faults_offsets_guard();`

// scenario is one fault scenario's private pipeline: a source database and
// Debezium connector (a stacktest sandbox), a topic, a target database with
// the invariant triggers, and the pgsink processes started on it.
type scenario struct {
	// unlogged is scenarioOptions.unlogged.
	unlogged bool
	t        *testing.T
	st       *stacktest.T
	name     string
	topic    string
	// outboxTopic carries the workload's outbox events (Event Router).
	outboxTopic string
	// columns are source columns added mid-stream (scenario 11) that C
	// compares too.
	columns    []string
	connector  string
	targetURL  string
	configPath string
	target     *pgx.Conn
	procs      []*proc
	load       *workload
	result     *result
	extraEnv   []string
	started    time.Time
	// aim is the phase the scenario's faults fall in; faultsInSnapshot
	// counts those seen before the snapshot's sweep.
	aim              phase
	faultsInSnapshot int
	// tx is the transaction-consistent form (apply.consistency:
	// transaction, transaction_integration_test.go): the bank tables
	// beside the accounts, no outbox, the reader of the T invariant.
	tx *txScenario
}

type scenarioOptions struct {
	partitions int
	seedKeys   int
	sessionMS  int // kafka session.timeout.ms
	// evolve is the accounts table's schema.evolve ("": the default).
	evolve string
	// extraSourceDDL and extraTargetDDL run after the tables are created, before
	// the snapshot: a scenario's own columns.
	extraSourceDDL, extraTargetDDL string
	// verify configures the connector and pgsink as `pgsink verify
	// --repair` needs them (docs/recovery.md): a signal table, a writing
	// heartbeat, and the verify section.
	verify bool
	// aim inSnapshot seeds snapshotSeedKeys keys (unless seedKeys says
	// otherwise), so the initial snapshot lasts long enough to be hit.
	aim phase
	// encoding is the connector's converter and pgsink's encoding ("":
	// JSON).
	encoding config.Encoding
	// transaction runs the scenario under apply.consistency: transaction
	// with the bank workload (the T invariant).
	transaction bool
	// pipeline is apply.pipeline (0: the default, one transaction of a
	// partition at a time); the pool then has a connection per partition
	// and transaction in flight.
	pipeline int
	// unlogged sets apply.transaction.staging: unlogged (with transaction).
	unlogged bool
	// targetURL is the target database ("": a fresh one on the stack's
	// server): scenario 6f's, on a server of its own with a standby.
	targetURL string
}

func newScenario(t *testing.T, name string, o scenarioOptions) *scenario {
	t.Helper()
	ctx := context.Background()
	if o.partitions == 0 {
		o.partitions = 3
	}
	if o.seedKeys == 0 && o.aim == inSnapshot {
		o.seedKeys = snapshotSeedKeys
	}
	if o.seedKeys == 0 {
		o.seedKeys = 2000
	}
	if o.sessionMS == 0 {
		o.sessionMS = 10000
	}
	if o.transaction && localPath() {
		name += " (" + localPathEnv + "=1: the local path)"
	}
	s := &scenario{t: t, name: name, st: stacktest.New(t), started: time.Now(), aim: o.aim, unlogged: o.unlogged,
		result: &result{Scenario: name, Started: time.Now()}}
	s.st.Exec(sourceDDL)
	if o.extraSourceDDL != "" {
		s.st.Exec(o.extraSourceDDL)
	}
	s.st.Exec(outboxSourceDDL)
	s.topic = s.st.TopicPrefix + ".public.accounts"
	s.outboxTopic = outboxTopic(s.st.TopicPrefix)
	for _, topic := range []string{s.topic, s.outboxTopic} {
		if err := createTopic(ctx, s.st.Env.KafkaBootstrap, topic, o.partitions); err != nil {
			t.Fatal(err)
		}
	}
	s.load = newWorkload(t, s.st.SourceURL)
	s.load.seed(o.seedKeys) // streamed by the snapshot
	overrides := debeziumOverrides(s.st.TopicPrefix)
	if o.transaction {
		s.tx = s.transactionSource(overrides)
	}
	verifyYAML := ""
	if o.verify {
		s.st.Exec(verifySourceDDL)
		for k, v := range verifyOverrides {
			overrides[k] = v
		}
		overrides["table.include.list"] += "," + verifyTables
	}
	encodingYAML := s.useEncoding(o.encoding, overrides)
	s.connector = s.st.RegisterDebezium("accounts", overrides)
	if o.verify {
		verifyYAML = fmt.Sprintf("verify:\n  source_url: %s\n  slot: %s\n  signal_table: public.debezium_signal\n", s.st.SourceURL, s.connector)
	}

	s.targetURL = o.targetURL
	if s.targetURL == "" {
		s.targetURL = stacktest.OwnedTargetDatabase(t)
	}
	target, err := pgx.Connect(ctx, s.targetURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close(context.Background()) })
	s.target = target
	s.exec(targetDDL)
	if o.extraTargetDDL != "" {
		s.exec(o.extraTargetDDL)
	}
	s.exec(versionTrigger)
	s.exec(outboxTargetDDL)
	tablesYAML, applyYAML := fmt.Sprintf(outboxTableYAML, s.outboxTopic), ""
	if s.tx != nil {
		tablesYAML, applyYAML = s.transactionTarget()
	}
	pool := poolSize(t)
	if o.pipeline > 1 {
		applyYAML += fmt.Sprintf("  pipeline: %d\n", o.pipeline)
		pool = max(pool, o.pipeline*o.partitions)
	}
	evolve := ""
	if o.evolve != "" {
		evolve = "    schema: { evolve: " + o.evolve + " }\n"
	}

	s.configPath = filepath.Join(t.TempDir(), "pgsink.yaml")
	yaml := encodingYAML + fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
  session.timeout.ms: %d
  heartbeat.interval.ms: 1000
postgres:
  url: ${TARGET_URL}
  max_connections: %d
apply:
  batch: { max_records: 300, max_wait: 50ms }
%serrors:
  tolerance: all
  dead_letter: { destination: table }
metrics:
  listen: 127.0.0.1:${METRICS_PORT}
%stables:
  - topic: %s
    target: public.accounts
    deletes: hard
%s`, s.st.Env.KafkaBootstrap, s.st.ID, o.sessionMS, pool, applyYAML, verifyYAML, s.topic, evolve) + tablesYAML
	if err := os.WriteFile(s.configPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The offsets table must exist before the M trigger, and the trigger
	// before any instance writes a position.
	out, err := runCommand(time.Minute, []string{"TARGET_URL=" + s.targetURL, "METRICS_PORT=0"}, "migrate", "--config", s.configPath, "up")
	if err != nil {
		t.Fatalf("pgsink migrate up: %v\n%s", err, out)
	}
	s.exec(offsetsTrigger)
	t.Cleanup(s.killAll)
	return s
}

// killAll, at a scenario's cleanup, kills the instances still running and,
// if the test failed, logs the tail of each one's log.
func (s *scenario) killAll() {
	for _, p := range s.procs {
		if !p.exited() {
			p.signal(9)
			<-p.done
		}
		if s.t.Failed() {
			s.t.Logf("%s (pid %d) log tail:\n%s", p.name, p.cmd.Process.Pid, tail(p.Logs(), 60))
		}
	}
}

func (s *scenario) exec(sql string, args ...any) {
	s.t.Helper()
	if _, err := s.target.Exec(context.Background(), sql, args...); err != nil {
		s.t.Fatalf("target: %v\nSQL: %s", err, sql)
	}
}

// start runs one more pgsink instance with the audit on.
func (s *scenario) start(name string, env ...string) *proc {
	s.t.Helper()
	port := freePort(s.t)
	env = append([]string{"TARGET_URL=" + s.targetURL, fmt.Sprintf("METRICS_PORT=%d", port), "PGSINK_TEST_AUDIT=1"}, append(s.extraEnv, env...)...)
	p := startProc(s.t, name, s.configPath, env...)
	p.port = port
	p.sampleEvery(time.Second)
	s.procs = append(s.procs, p)
	s.t.Logf("%s: started %s (pid %d)", s.name, name, p.cmd.Process.Pid)
	return p
}

func (s *scenario) live() []*proc {
	var out []*proc
	for _, p := range s.procs {
		if !p.exited() {
			out = append(out, p)
		}
	}
	return out
}

// stopAll ends every live instance with SIGTERM (exit 0 expected), reading
// their counters first.
func (s *scenario) stopAll() {
	for _, p := range s.live() {
		s.scrape(p)
		p.stop(60 * time.Second)
	}
}

// scrape adds an instance's counters to the result.
func (s *scenario) scrape(p *proc) {
	p.sample()
	if v := p.metric("pgsink_fenced_batches_total"); v > 0 {
		s.result.Fenced += int(v)
	}
}

// sourceQuery renders what C compares: every column but the version ones,
// the TOASTed text by its md5, and the columns a scenario added.
func (s *scenario) sourceQuery() string {
	cols := "id, seq, balance, updated_at, md5(big) AS big"
	for _, c := range s.columns {
		cols += ", " + pgx.Identifier{c}.Sanitize()
	}
	return `SELECT ` + cols + ` FROM public.accounts ORDER BY id`
}

func (s *scenario) checksum(ctx context.Context, conn *pgx.Conn) (string, int, error) {
	var sum *string
	var n int
	err := conn.QueryRow(ctx, `SELECT md5(string_agg(row_to_json(q)::text, E'\n')), count(*) FROM (`+s.sourceQuery()+`) q`).Scan(&sum, &n)
	if err != nil {
		return "", 0, err
	}
	bank, err := s.bankChecksum(ctx, conn)
	if err != nil {
		return "", 0, err
	}
	if sum == nil {
		return "empty" + bank, n, nil
	}
	return *sum + bank, n, nil
}

// waitQuiet waits until the target equals the source (C), at most timeout.
// It returns whether it did; the checks record a failure otherwise.
func (s *scenario) waitQuiet(timeout time.Duration) bool {
	ctx := context.Background()
	src, err := pgx.Connect(ctx, s.st.SourceURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer src.Close(ctx)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		a, n, err1 := s.checksum(ctx, src)
		b, m, err2 := s.checksum(ctx, s.target)
		// The outbox events too: every source event has its target row.
		var events, applied int
		err3 := src.QueryRow(ctx, `SELECT count(*) FROM public.outbox`).Scan(&events)
		err4 := s.target.QueryRow(ctx, `SELECT count(*) FROM public.account_events`).Scan(&applied)
		if err1 == nil && err2 == nil && err3 == nil && err4 == nil && a == b && events == applied {
			return true
		}
		last = fmt.Sprintf("source %s (%d rows), target %s (%d rows), outbox events %d source / %d target %v %v %v %v", a, n, b, m, events, applied, err1, err2, err3, err4)
		// Every instance dead means nothing will converge any more.
		if len(s.procs) > 0 && len(s.live()) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if timeout > 5*time.Second {
		s.t.Logf("%s: not quiet within %s: %s; %s", s.name, timeout, last, s.positions(ctx))
	}
	return false
}

// positions says where a pipeline that did not converge stands: the table
// topic's end against pgsink's stored positions. Equal, the missing events
// never reached Kafka (Debezium); apart, pgsink is behind.
func (s *scenario) positions(ctx context.Context) string {
	var stored int64
	if err := s.target.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM pgsink.offsets WHERE topic = $1`, s.topic).Scan(&stored); err != nil {
		return fmt.Sprintf("positions unknown: %v", err)
	}
	return fmt.Sprintf("table topic: end %d, pgsink's stored positions %d", s.topicEnd(), stored)
}

// createTopic creates the table topic with room for the 5 MB poison value.
func createTopic(ctx context.Context, bootstrap, name string, partitions int) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: name, NumPartitions: partitions, ReplicationFactor: 1,
		Config: map[string]string{"max.message.bytes": "10485760"}}})
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Error)
		}
	}
	return nil
}

// anyLogContains reports the instances whose logs contain s.
func (s *scenario) logsContaining(sub string) []string {
	var names []string
	for _, p := range s.procs {
		if strings.Contains(p.Logs(), sub) {
			names = append(names, fmt.Sprintf("%s(pid %d)", p.name, p.cmd.Process.Pid))
		}
	}
	return names
}

// poolSize is postgres.max_connections of the instances: 3, or
// PGSINK_FAULTS_MAX_CONNECTIONS to run a scenario with another pool (a pool
// of 1 makes every ambiguous COMMIT of scenario 2 need a second connection
// while the first is still held).
func poolSize(t *testing.T) int {
	v := os.Getenv("PGSINK_FAULTS_MAX_CONNECTIONS")
	if v == "" {
		return 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("PGSINK_FAULTS_MAX_CONNECTIONS=%q: want a positive integer", v)
	}
	return n
}
