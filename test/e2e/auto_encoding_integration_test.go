//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2EAutoEncoding: under encoding: auto one pgsink reads a table whose
// connector writes JSON and one whose connector writes Avro through the
// stack's registry (two sandboxes: Debezium wants one topic prefix per
// connector), each record by its first byte, and both targets converge on
// their sources; a record that is neither (a plain text value produced
// into the JSON table's topic) is a dead letter saying so, the rows around
// it applied.
func TestE2EAutoEncoding(t *testing.T) {
	js, av := stacktest.New(t), stacktest.New(t)
	registry, err := av.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	js.Exec(`CREATE TABLE public.items ` + itemsDDL)
	js.RegisterDebezium("json", map[string]string{"table.include.list": "public.items"})
	avroItemsSource(t, av, nil)
	jsonTopic, avroTopic := js.TopicPrefix+".public.items", av.TopicPrefix+".public.items"

	ddl := itemsDDL[:len(itemsDDL)-1] + `, _pgsink_commit_lsn bigint, _pgsink_lsn bigint)`
	targetURL, target := targetWith(t, `CREATE TABLE public.items `+ddl+`; CREATE TABLE public.items_avro `+ddl)
	cfg := tablesConfig(js, fmt.Sprintf("  - topic: %s\n    target: public.items\n  - topic: %s\n    target: public.items_avro\n",
		jsonTopic, avroTopic)) + fmt.Sprintf("encoding: auto\nschema_registry:\n  url: %s/apis/ccompat/v7\n", registry)

	insert := `INSERT INTO public.items SELECT i, 'item ' || i, i * 1.25, '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 minute',
		jsonb_build_object('i', i), NULL FROM generate_series(1, 50) AS i`
	js.Exec(insert)
	av.Exec(insert)
	// Both topics exist before pgsink subscribes: a topic created later is
	// only seen at the consumer's next metadata refresh.
	for _, st := range []*stacktest.T{js, av} {
		st.ReadUntil(90*time.Second, func(rs []recording.Record) bool { return len(rs) > 0 })
	}
	produce(t, js.Env.KafkaBootstrap, jsonTopic, []byte(`{"id":1}`), []byte("not a record"))
	p := startPgsink(t, cfg, "TARGET_URL="+targetURL)
	defer p.stop(30 * time.Second)

	for _, st := range []*stacktest.T{js, av} {
		st.Exec(`UPDATE public.items SET name = name || ' (updated)', amount = amount + 0.01 WHERE id % 3 = 0`)
		st.Exec(`DELETE FROM public.items WHERE id % 7 = 0`)
	}
	for _, c := range []struct {
		st     *stacktest.T
		target string
	}{{js, "public.items"}, {av, "public.items_avro"}} {
		eventually(t, 90*time.Second, c.target+" (auto-detected) equals its source", func() (bool, string) {
			src := checksum(t, c.st.SourceURL, `SELECT `+itemsColumns+` FROM public.items ORDER BY id`)
			dst := checksum(t, targetURL, `SELECT `+itemsColumns+` FROM `+c.target+` ORDER BY id`)
			return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
		})
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
