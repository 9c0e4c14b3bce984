//go:build integration

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EKeyMoveInOneEvent: a table without a primary key, REPLICA IDENTITY
// FULL, configured with key: [a, b, c] (a unique index on the target).
// Debezium sends a change of a key column as ONE update with a null record
// key; the old key's row must go and the new key's row carry every column,
// the unchanged out-of-line value included. On main the old rows stayed.
func TestE2EKeyMoveInOneEvent(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.pairs (a int NOT NULL, b text NOT NULL, c int NOT NULL, note text, big text)`)
	st.Exec(`ALTER TABLE public.pairs REPLICA IDENTITY FULL, ALTER COLUMN big SET STORAGE EXTERNAL`)
	st.RegisterDebezium("pairs", map[string]string{"table.include.list": "public.pairs"})
	targetURL, conn := targetWith(t, `CREATE TABLE public.pairs (a int NOT NULL, b text NOT NULL, c int NOT NULL,
		note text, big text, _pgsink_commit_lsn bigint, _pgsink_lsn bigint, UNIQUE (a, b, c))`)
	p := startPgsink(t, tableConfig(st, st.TopicPrefix+".public.pairs", "public.pairs", "    key: [a, b, c]\n"), "TARGET_URL="+targetURL)

	// big is over 2 KB and stored out of line, uncompressed.
	st.Exec(`INSERT INTO public.pairs SELECT i, 'b' || i, i % 3, 'note ' || i,
		(SELECT string_agg(md5(i::text || '/' || j), '') FROM generate_series(1, 100) j) FROM generate_series(1, 20) i`)
	query := `SELECT a, b, c, note, big FROM public.pairs ORDER BY a, b, c`
	convergeTo(t, st, targetURL, query, "the snapshot and inserts")
	// Key moves: one column, two columns, a move and then an update of the
	// moved row, and two moves of one row in one transaction.
	st.Exec(`UPDATE public.pairs SET a = a + 100 WHERE a <= 5`)
	st.Exec(`UPDATE public.pairs SET b = b || '-moved', c = c + 10, note = 'moved' WHERE a BETWEEN 6 AND 10`)
	st.Exec(`UPDATE public.pairs SET note = 'after the move' WHERE a = 101`)
	st.Exec(`BEGIN; UPDATE public.pairs SET a = 200 WHERE a = 11; UPDATE public.pairs SET a = 300 WHERE a = 200; COMMIT`)
	convergeTo(t, st, targetURL, query, "the key moves")
	var rows int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM public.pairs`).Scan(&rows); err != nil || rows != 20 {
		t.Fatalf("target holds %d rows (%v), want the source's 20", rows, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestE2EToastAcrossPrimaryKeyChange: under REPLICA IDENTITY DEFAULT a
// change of the primary key of a row whose out-of-line value (over 2 KB,
// uncompressed) is unchanged arrives as a delete of the old key and a
// create carrying Debezium's unavailable-value placeholder. The halves
// land on the partitions of their keys (four here, with small batches) and
// are applied in whichever order those run; the new row must hold the old
// row's value either way. On main it was NULL.
func TestE2EToastAcrossPrimaryKeyChange(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.docs (id bigint PRIMARY KEY, name text NOT NULL, big text)`)
	st.Exec(`ALTER TABLE public.docs ALTER COLUMN big SET STORAGE EXTERNAL`)
	topic := st.TopicPrefix + ".public.docs"
	if err := stacktest.CreateTopic(ctx, st.Env.KafkaBootstrap, topic, 4); err != nil {
		t.Fatal(err)
	}
	st.RegisterDebezium("docs", map[string]string{"table.include.list": "public.docs"})
	targetURL, conn := targetWith(t, `CREATE TABLE public.docs (id bigint PRIMARY KEY, name text NOT NULL, big text,
		_pgsink_commit_lsn bigint, _pgsink_lsn bigint)`)
	p := startPgsink(t, tableConfig(st, topic, "public.docs", "")+"apply:\n  batch: { max_records: 7, max_wait: 10ms }\n", "TARGET_URL="+targetURL)

	st.Exec(`INSERT INTO public.docs SELECT i, 'doc ' || i,
		(SELECT string_agg(md5(i::text || '/' || j), '') FROM generate_series(1, 100) j) FROM generate_series(1, 60) i`)
	query := `SELECT id, name, big FROM public.docs ORDER BY id`
	convergeTo(t, st, targetURL, query, "the inserts")
	// The large value changes just before some moves, so that a create
	// applied before its old key's partition catches up copies a stale
	// value the delete must correct; other rows move twice.
	st.Exec(`UPDATE public.docs SET big = (SELECT string_agg(md5('new' || id || '/' || j), '') FROM generate_series(1, 100) j) WHERE id % 3 = 0`)
	st.Exec(`UPDATE public.docs SET id = id + 1000, name = name || ' moved' WHERE id <= 40`)
	st.Exec(`UPDATE public.docs SET id = id + 1000 WHERE id BETWEEN 1001 AND 1010`)
	convergeTo(t, st, targetURL, query, "the primary-key changes")
	var nulls int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.docs WHERE big IS NULL`).Scan(&nulls); err != nil || nulls != 0 {
		t.Fatalf("%d target rows lost their large value (%v)", nulls, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
