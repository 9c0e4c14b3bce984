//go:build integration

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// fleetOptions size the fleet pipeline: many small source tables, one of
// them hot on a topic of many partitions. Each comes from an environment
// variable so the benchmark and the scenario can be run larger or smaller
// than on the shared 2-core machine.
type fleetOptions struct {
	tables        int // PGSINK_FLEET_TABLES
	hotPartitions int // PGSINK_FLEET_PARTITIONS: the hot table's topic
	rows          int // PGSINK_FLEET_ROWS: rows per table in the snapshot
	hotRows       int // PGSINK_FLEET_HOT_ROWS: rows of the hot table
}

func fleetOptionsFromEnv(tb testing.TB, def fleetOptions) fleetOptions {
	tb.Helper()
	for _, f := range []struct {
		env string
		v   *int
	}{
		{"PGSINK_FLEET_TABLES", &def.tables},
		{"PGSINK_FLEET_PARTITIONS", &def.hotPartitions},
		{"PGSINK_FLEET_ROWS", &def.rows},
		{"PGSINK_FLEET_HOT_ROWS", &def.hotRows},
	} {
		if s := os.Getenv(f.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				tb.Fatalf("%s=%q: want a positive integer", f.env, s)
			}
			*f.v = n
		}
	}
	if def.tables < 2 {
		tb.Fatalf("PGSINK_FLEET_TABLES=%d: want at least 2 (a hot table and a cold one)", def.tables)
	}
	return def
}

// fleet is a pipeline of o.tables source tables public.t0000… streamed by
// ONE Debezium connector, and a target database with the same tables for
// ONE pgsink routing rule (a template deriving each target from its topic).
// The hot table t0000's topic gets o.hotPartitions partitions from
// Debezium's own topic creation (topic.creation.groups), the others one,
// Kafka Connect's default: the way a deployment gives its busiest table
// more parallelism without pre-creating topics by hand.
type fleet struct {
	tb         testing.TB
	st         *stacktest.T
	o          fleetOptions
	connector  string
	targetURL  string
	target     *pgx.Conn
	configPath string
}

func fleetTable(i int) string { return fmt.Sprintf("t%04d", i) }

// fleetTableDDL: seq counts a row's updates, note changes with it.
const fleetTableDDL = `CREATE TABLE public.%s (id integer PRIMARY KEY, seq integer NOT NULL, note text NOT NULL%s)`

func newFleet(tb testing.TB, o fleetOptions, kafkaYAML string) *fleet {
	tb.Helper()
	ctx := context.Background()
	f := &fleet{tb: tb, st: stacktest.New(tb), o: o}
	var src, dst strings.Builder
	for i := range o.tables {
		n := o.rows
		if i == 0 {
			n = o.hotRows
		}
		fmt.Fprintf(&src, fleetTableDDL+";\n", fleetTable(i), "")
		fmt.Fprintf(&src, "INSERT INTO public.%s SELECT g, 0, 'r' || g FROM generate_series(1, %d) g;\n", fleetTable(i), n)
		fmt.Fprintf(&dst, fleetTableDDL+";\n", fleetTable(i), ", _pgsink_commit_lsn bigint, _pgsink_lsn bigint")
	}
	f.st.Exec(src.String())
	prefix := f.st.TopicPrefix
	f.connector = f.st.RegisterDebezium("fleet", map[string]string{
		"table.include.list": `public\.t[0-9]+`,
		// Deletes without tombstones: the audit then accounts for every
		// offset below a position without reading 500 topics back.
		"tombstones.on.delete":                      "false",
		"topic.creation.default.replication.factor": "1",
		"topic.creation.default.partitions":         "1",
		"topic.creation.groups":                     "hot",
		"topic.creation.hot.include":                regexp.QuoteMeta(prefix + ".public." + fleetTable(0)),
		"topic.creation.hot.replication.factor":     "1",
		"topic.creation.hot.partitions":             strconv.Itoa(o.hotPartitions),
	})
	f.targetURL = stacktest.OwnedTargetDatabase(tb)
	target, err := pgx.Connect(ctx, f.targetURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { target.Close(context.Background()) })
	f.target = target
	f.exec(dst.String())

	f.configPath = filepath.Join(tb.TempDir(), "pgsink.yaml")
	yaml := fmt.Sprintf(`kafka:
  bootstrap.servers: %s
  group.id: %s
%spostgres:
  url: ${TARGET_URL}
metrics:
  listen: 127.0.0.1:${METRICS_PORT}
errors:
  tolerance: all
  dead_letter: { destination: table }
tables:
  - topic_pattern: '%s\.public\.(?P<table>t[0-9]+)'
    target: 'public.${table}'
    deletes: hard
`, f.st.Env.KafkaBootstrap, f.st.ID, kafkaYAML, regexp.QuoteMeta(prefix))
	if err := os.WriteFile(f.configPath, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	out, err := runCommand(time.Minute, []string{"TARGET_URL=" + f.targetURL, "METRICS_PORT=0"}, "migrate", "--config", f.configPath, "up")
	if err != nil {
		tb.Fatalf("pgsink migrate up: %v\n%s", err, out)
	}
	return f
}

func (f *fleet) exec(sql string, args ...any) {
	f.tb.Helper()
	if _, err := f.target.Exec(context.Background(), sql, args...); err != nil {
		f.tb.Fatalf("target: %v\nSQL: %.300s", err, sql)
	}
}

// topicEnds returns the end offset of every partition of the fleet's topics.
func (f *fleet) topicEnds(ctx context.Context) (map[kafka.TopicPartition]int64, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": f.st.Env.KafkaBootstrap})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	md, err := admin.GetMetadata(nil, true, 10000)
	if err != nil {
		return nil, err
	}
	specs := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for name, t := range md.Topics {
		if !strings.HasPrefix(name, f.st.TopicPrefix+".public.") {
			continue
		}
		for _, p := range t.Partitions {
			topic := name
			specs[kafka.TopicPartition{Topic: &topic, Partition: p.ID}] = kafka.LatestOffsetSpec
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := admin.ListOffsets(ctx, specs)
	if err != nil {
		return nil, err
	}
	ends := map[kafka.TopicPartition]int64{}
	for tp, r := range res.ResultInfos {
		if r.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("%s[%d]: %w", *tp.Topic, tp.Partition, r.Error)
		}
		ends[kafka.TopicPartition{Partition: tp.Partition, Topic: tp.Topic}] = int64(r.Offset)
	}
	return ends, nil
}

// kafkaRecords sums the end offsets of the fleet's topics, and counts them
// and their partitions.
func (f *fleet) kafkaRecords(ctx context.Context) (records int64, topics, partitions int, err error) {
	ends, err := f.topicEnds(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	seen := map[string]bool{}
	for tp, end := range ends {
		records += end
		seen[*tp.Topic] = true
	}
	return records, len(seen), len(ends), nil
}

// waitKafka waits until the fleet's topics hold at least want records in
// all, from every table.
func (f *fleet) waitKafka(want int64, timeout time.Duration) {
	f.tb.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		n, topics, _, err := f.kafkaRecords(ctx)
		if err == nil && n >= want && topics >= f.o.tables {
			return
		}
		if time.Now().After(deadline) {
			f.tb.Fatalf("the fleet's topics hold %d records in %d topics, want %d in %d (%v)", n, topics, want, f.o.tables, err)
		}
		time.Sleep(time.Second)
	}
}

// applied sums pgsink's stored positions: with no tombstones on the
// topics, every offset below a position was applied or dead-lettered.
func (f *fleet) applied(ctx context.Context) (int64, error) {
	var n int64
	err := f.target.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM pgsink.offsets WHERE group_id = $1`, f.st.ID).Scan(&n)
	return n, err
}

// sessions counts the target's sessions of pgsink (its application_name).
func (f *fleet) sessions(ctx context.Context) (int, error) {
	var n int
	err := f.target.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgsink'`).Scan(&n)
	return n, err
}
