//go:build integration

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// pairsColumns are the columns of the keyless table of the key-move tests;
// big holds a value stored out of line, uncompressed (over 2 KB).
const pairsColumns = `a, b, c, note, big`

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
	targetURL := stacktest.OwnedTargetDatabase(t)
	conn, err := pgx.Connect(context.Background(), targetURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `CREATE TABLE public.pairs (a int NOT NULL, b text NOT NULL, c int NOT NULL,
		note text, big text, _pgsink_commit_lsn bigint, _pgsink_lsn bigint, UNIQUE (a, b, c))`); err != nil {
		t.Fatal(err)
	}
	p := startPgsink(t, fmt.Sprintf(`
kafka:
  bootstrap.servers: %s
  group.id: %s
postgres:
  url: ${TARGET_URL}
metrics:
  listen: 127.0.0.1:0
tables:
  - topic: %s.public.pairs
    target: public.pairs
    key: [a, b, c]
`, st.Env.KafkaBootstrap, st.ID, st.TopicPrefix), "TARGET_URL="+targetURL)

	st.Exec(`INSERT INTO public.pairs SELECT i, 'b' || i, i % 3, 'note ' || i,
		(SELECT string_agg(md5(i::text || '/' || j), '') FROM generate_series(1, 100) j) FROM generate_series(1, 20) i`)
	query := `SELECT ` + pairsColumns + ` FROM public.pairs ORDER BY a, b, c`
	converge := func(what string) {
		eventually(t, 90*time.Second, what, func() (bool, string) {
			src, dst := checksum(t, st.SourceURL, query), checksum(t, targetURL, query)
			return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
		})
	}
	converge("the snapshot and inserts")
	// Key moves: one column, two columns, a move and then an update of the
	// moved row, and two moves of one row in one transaction.
	st.Exec(`UPDATE public.pairs SET a = a + 100 WHERE a <= 5`)
	st.Exec(`UPDATE public.pairs SET b = b || '-moved', c = c + 10, note = 'moved' WHERE a BETWEEN 6 AND 10`)
	st.Exec(`UPDATE public.pairs SET note = 'after the move' WHERE a = 101`)
	st.Exec(`BEGIN; UPDATE public.pairs SET a = 200 WHERE a = 11; UPDATE public.pairs SET a = 300 WHERE a = 200; COMMIT`)
	converge("the key moves")
	var rows int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM public.pairs`).Scan(&rows); err != nil || rows != 20 {
		t.Fatalf("target holds %d rows (%v), want the source's 20", rows, err)
	}
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
