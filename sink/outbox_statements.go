package sink

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/dedup"
)

// Bookkeeping columns of an outbox table's staging table.
const (
	stageEvent  = "pgsink.event"
	stageOffset = "pgsink.offset"
)

// outboxStatements are the SQL texts of one outbox table. Payload values are
// staged as text and cast to the column's type in SQL, so PostgreSQL's own
// input functions decide what a value means; a value they refuse fails the
// statement with a data exception, which isolates its record (I5).
type outboxStatements struct {
	stageName   string
	stage       string   // its quoted pg_temp name
	stageCols   []string // unquoted, in COPY order
	createStage string
	// apply records the staged events in the ledger and upserts, per key,
	// the row of the last event that was not there yet. $1 is the target's
	// ledger name, $2 and $3 the partition's topic and number. It returns
	// the number of fresh events and of rows written.
	apply string
}

func newOutboxStatements(t *Table, schema string) *outboxStatements {
	h := fnv.New64a()
	h.Write([]byte(t.Ref()))
	// The columns are part of the name: after schema.evolve adds a column,
	// the table gets a new staging table rather than the session's old one.
	for _, c := range t.Columns {
		h.Write([]byte("\x00" + c.Name + "\x00" + c.Type))
	}
	st := &outboxStatements{stageName: fmt.Sprintf("pgsink_outbox_%016x", h.Sum64())}
	stage := pgx.Identifier{"pg_temp", st.stageName}.Sanitize()
	st.stage = stage
	ledger := dedup.OutboxEventsTable(schema)

	st.stageCols = []string{stageEvent, stageOffset}
	defs := []string{q(stageEvent) + " text NOT NULL", q(stageOffset) + " bigint NOT NULL"}
	var cols, casts, sets, keys []string
	for _, c := range t.Columns {
		st.stageCols = append(st.stageCols, c.Name)
		defs = append(defs, q(c.Name)+" text")
		cols = append(cols, q(c.Name))
		casts = append(casts, "s."+q(c.Name)+"::"+c.Type+" AS "+q(c.Name))
		if !t.isKey(c.Name) {
			sets = append(sets, q(c.Name)+" = excluded."+q(c.Name))
		}
	}
	for _, k := range t.Key {
		keys = append(keys, q(k))
	}
	st.createStage = "CREATE TEMP TABLE IF NOT EXISTS " + stage + " (\n    " + strings.Join(defs, ",\n    ") + "\n)"

	onConflict := "ON CONFLICT (" + strings.Join(keys, ", ") + ") DO NOTHING"
	if len(sets) > 0 {
		onConflict = "ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE\n       SET " + strings.Join(sets, ", ")
	}
	// No version guard: outbox events carry no source version, and a Kafka
	// offset is none either (see writeOutbox). The ledger insert decides
	// which events are fresh; DISTINCT ON keeps, per key (compared as the
	// column's type, not as text), the fresh event of the highest offset.
	st.apply = "WITH fresh AS (\n" +
		"    INSERT INTO " + ledger + " AS l (target, event_id, topic, partition, \"offset\")\n" +
		"    SELECT $1, s." + q(stageEvent) + ", $2, $3, s." + q(stageOffset) + "\n" +
		"      FROM " + stage + " AS s\n" +
		"    ON CONFLICT (target, event_id) DO NOTHING\n" +
		"    RETURNING l.event_id\n" +
		"), latest AS (\n" +
		"    SELECT DISTINCT ON (" + strings.Join(keys, ", ") + ") *\n" +
		"      FROM (SELECT s." + q(stageOffset) + ", " + strings.Join(casts, ", ") + "\n" +
		"              FROM " + stage + " AS s\n" +
		"              JOIN fresh AS f ON f.event_id = s." + q(stageEvent) + ") AS e\n" +
		"     ORDER BY " + strings.Join(keys, ", ") + ", " + q(stageOffset) + " DESC\n" +
		"), written AS (\n" +
		"    INSERT INTO " + t.Ident() + " AS t (" + strings.Join(cols, ", ") + ")\n" +
		"    SELECT " + strings.Join(cols, ", ") + " FROM latest\n" +
		"    " + onConflict + "\n" +
		"    RETURNING 1\n" +
		")\n" +
		"SELECT (SELECT count(*) FROM fresh), (SELECT count(*) FROM written)"
	return st
}
