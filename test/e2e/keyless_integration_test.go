//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// keylessPipeline streams a source table without a primary key (REPLICA
// IDENTITY FULL, so Debezium sends no record key and full before images)
// into a target keyed on (a, b), with errors.tolerance: none.
type keylessPipeline struct{ pipeline }

const pairsColumns = `a, b, d`

func newKeylessPipeline(t *testing.T, snapshotRows string) *keylessPipeline {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.pairs (a integer NOT NULL, b text NOT NULL, d integer)`)
	st.Exec(`ALTER TABLE public.pairs REPLICA IDENTITY FULL`)
	st.Exec(`INSERT INTO public.pairs VALUES ` + snapshotRows)
	st.RegisterDebezium("pairs", map[string]string{"table.include.list": "public.pairs"})
	targetURL := stacktest.OwnedTargetDatabase(t)
	conn, err := pgx.Connect(context.Background(), targetURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), `CREATE TABLE public.pairs (a integer, b text, d integer, _pgsink_commit_lsn bigint, _pgsink_lsn bigint, PRIMARY KEY (a, b))`); err != nil {
		t.Fatal(err)
	}
	k := &keylessPipeline{pipeline{st: st, targetURL: targetURL, target: conn, port: freePort(t), topic: st.TopicPrefix + ".public.pairs"}}
	k.p = startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
apply:
  batch: { max_wait: 1s }
errors:
  tolerance: none
metrics:
  listen: 127.0.0.1:%d
tables:
  - topic: %s
    target: public.pairs
    key: [a, b]
`, st.Env.KafkaBootstrap, st.ID, k.port, k.topic), "TARGET_URL="+targetURL)
	return k
}

func (k *keylessPipeline) converge(t *testing.T, what string) {
	t.Helper()
	query := `SELECT ` + pairsColumns + ` FROM public.pairs ORDER BY a, b`
	eventually(t, 60*time.Second, what, func() (bool, string) {
		src, dst := checksum(t, k.st.SourceURL, query), checksumOrMissing(t, k.targetURL, query)
		return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
	})
}

// expectStopAt waits for the partition to stop on a duplicate key and
// checks that its stored offset is the duplicate's.
func (k *keylessPipeline) expectStopAt(t *testing.T, offset int64) {
	t.Helper()
	waitStoppedAt(t, k.port, k.target, k.topic, offset)
	if logs := k.p.Logs(); !strings.Contains(logs, "two source rows share the target key") || !strings.Contains(logs, "no primary key") {
		t.Errorf("the stop does not say that two source rows share a key:\n%s", logs)
	}
}

// waitStoppedAt waits until partition 0 of topic is stopped
// (pgsink_partition_stopped on the metrics port) and checks that its stored
// position is offset: the record it stopped at was not passed.
func waitStoppedAt(t *testing.T, port int, target *pgx.Conn, topic string, offset int64) {
	t.Helper()
	eventually(t, 60*time.Second, "the partition stopped", func() (bool, string) {
		v, _ := metricValue(port, `pgsink_partition_stopped{partition="0",topic="`+topic+`"}`)
		return v == 1, fmt.Sprintf("pgsink_partition_stopped %v", v)
	})
	var next int64
	if err := target.QueryRow(context.Background(), `SELECT next_offset FROM pgsink.offsets WHERE topic = $1 AND partition = 0`, topic).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != offset {
		t.Errorf("stored offset %d, want %d: the record the partition stopped at must not be passed", next, offset)
	}
}

// TestE2EKeylessDuplicateSnapshot: a source table without a primary key
// holding two identical rows cannot be written to a keyed target: pgsink
// stops at the second row's snapshot read, offset unmoved, and says why,
// instead of collapsing the two.
func TestE2EKeylessDuplicateSnapshot(t *testing.T) {
	k := newKeylessPipeline(t, `(1, 'x', 10), (1, 'x', 10), (2, 'y', 20)`)
	k.expectStopAt(t, 1)
	var n int
	if err := k.target.QueryRow(context.Background(), `SELECT count(*) FROM public.pairs`).Scan(&n); err != nil || n != 1 {
		t.Errorf("target holds %d rows (%v), want the one read before the duplicate", n, err)
	}
}

// TestE2EKeylessUniqueThenDuplicate: while the configured key is unique in
// the source, a table without a primary key is mirrored exactly (inserts,
// updates, deletes); the first insert of a second row with a key already
// held stops the partition at it, offset unmoved.
func TestE2EKeylessUniqueThenDuplicate(t *testing.T) {
	k := newKeylessPipeline(t, `(1, 'x', 10), (2, 'y', 20)`)
	k.converge(t, "the snapshot")
	k.st.Exec(`INSERT INTO public.pairs VALUES (3, 'z', 30), (4, 'w', 40)`)
	k.st.Exec(`UPDATE public.pairs SET d = d + 1 WHERE a IN (1, 3)`)
	k.st.Exec(`DELETE FROM public.pairs WHERE a = 2`)
	k.st.Exec(`INSERT INTO public.pairs VALUES (2, 'y', 21)`)
	k.converge(t, "inserts, updates, a delete and a re-insert of a key")

	hw, err := stacktest.HighWatermark(k.st.Env.KafkaBootstrap, k.topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	k.st.Exec(`INSERT INTO public.pairs VALUES (3, 'z', 30)`)
	k.st.Exec(`DELETE FROM public.pairs WHERE ctid = (SELECT ctid FROM public.pairs WHERE a = 3 LIMIT 1)`)
	k.expectStopAt(t, hw)
	var d int
	if err := k.target.QueryRow(context.Background(), `SELECT d FROM public.pairs WHERE a = 3`).Scan(&d); err != nil || d != 31 {
		t.Errorf("target row 3 is d=%d (%v), want 31, untouched by the duplicate and the delete after it", d, err)
	}
}
