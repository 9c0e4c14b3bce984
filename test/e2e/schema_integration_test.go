//go:build integration

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// TestE2ESchemaCreateAndEvolve: with schema.create the target is created
// from the first event's schema; with schema.evolve add_columns a column
// added to the source mid-stream is added to the target, and the target
// keeps equal to the source, the new column included.
func TestE2ESchemaCreateAndEvolve(t *testing.T) {
	st := stacktest.New(t)
	st.Exec(`CREATE TABLE public.items ` + itemsDDL)
	st.RegisterDebezium("items", map[string]string{"table.include.list": "public.items"})
	targetURL := stacktest.OwnedTargetDatabase(t)
	p := startPgsink(t, itemsConfig(st, st.TopicPrefix+".public.items", "    schema: { create: true, evolve: add_columns }\n"), "TARGET_URL="+targetURL)

	st.Exec(`INSERT INTO public.items SELECT i, 'item ' || i, i * 1.5, now(), jsonb_build_object('i', i), NULL FROM generate_series(1, 50) i`)
	before := `SELECT ` + itemsColumns + ` FROM public.items ORDER BY id`
	converge := func(what, query string) {
		eventually(t, 60*time.Second, what, func() (bool, string) {
			src, dst := checksum(t, st.SourceURL, query), checksumOrMissing(t, targetURL, query)
			return src == dst, fmt.Sprintf("source %s, target %s", src, dst)
		})
	}
	converge("a target created from the events' schema", before)

	st.Exec(`ALTER TABLE public.items ADD COLUMN tags text[], ADD COLUMN ratio numeric(5,3)`)
	st.Exec(`INSERT INTO public.items VALUES (100, 'with new columns', 1, now(), '{}', 'n', '{a,b}', 0.125)`)
	st.Exec(`UPDATE public.items SET tags = '{x}', ratio = 1.5 WHERE id <= 10`)
	converge("the target extended with the source's new columns", `SELECT `+itemsColumns+`, tags, ratio FROM public.items ORDER BY id`)
	if code, _ := p.stop(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
