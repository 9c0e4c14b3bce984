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

// TestE2EAutoEncoding: under encoding: auto one pgsink reads a table whose
// connector writes JSON and one whose connector writes Avro through the
// stack's registry, each record by its first byte, and both targets
// converge on their sources; a record that is neither (a plain text value
// produced into the JSON table's topic) is a dead letter saying so, the
// rows around it applied.
func TestE2EAutoEncoding(t *testing.T) {
	st := stacktest.New(t)
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.Exec(`CREATE TABLE public.items_avro ` + itemsDDL)
	st.RegisterDebezium("json", map[string]string{"table.include.list": "public.items"})
	avro := stacktest.AvroConverter(registry)
	avro["table.include.list"] = "public.items_avro"
	st.RegisterDebezium("avro", avro)

	ddl := itemsDDL[:len(itemsDDL)-1] + `, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`
	targetURL, target := targetWith(t, `CREATE TABLE public.items `+ddl+`; CREATE TABLE public.items_avro `+ddl)
	cfg := tablesConfig(st, fmt.Sprintf("  - topic: %s.public.items\n    target: public.items\n  - topic: %s.public.items_avro\n    target: public.items_avro\n",
		st.TopicPrefix, st.TopicPrefix)) + fmt.Sprintf("encoding: auto\nschema_registry:\n  url: %s/apis/ccompat/v7\n", registry)
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	defer p.stop(30 * time.Second)

	for _, table := range []string{"public.items", "public.items_avro"} {
		st.Exec(`INSERT INTO ` + table + ` SELECT i, 'item ' || i, i * 1.25, '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute',
			jsonb_build_object('i', i), NULL FROM generate_series(1, 50) AS i`)
	}
	produce(t, st.Env.KafkaBootstrap, st.TopicPrefix+".public.items", []byte(`{"id":1}`), []byte("not a record"))
	for _, table := range []string{"public.items", "public.items_avro"} {
		st.Exec(`UPDATE ` + table + ` SET name = name || ' (updated)', amount = amount + 0.01 WHERE id % 3 = 0`)
		st.Exec(`DELETE FROM ` + table + ` WHERE id % 7 = 0`)
	}
	for _, table := range []string{"public.items", "public.items_avro"} {
		convergeTo(t, st, targetURL, `SELECT `+itemsColumns+` FROM `+table+` ORDER BY id`, table+" (auto-detected) equals its source")
	}
	var reasons []string
	eventually(t, 60*time.Second, "one dead letter", func() (bool, string) {
		rows, err := target.Query(context.Background(), `SELECT error FROM pgsink.dead_letters`)
		if err != nil {
			return false, err.Error()
		}
		reasons, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err == nil && len(reasons) == 1, fmt.Sprintf("%d dead letters: %v", len(reasons), reasons)
	})
	if !strings.Contains(reasons[0], "neither Avro") {
		t.Errorf("dead letter %q does not say the record is neither Avro nor JSON", reasons[0])
	}
}
