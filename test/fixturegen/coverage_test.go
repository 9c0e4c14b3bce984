package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgsink/pgsink/test/recording"
)

// fixtureDir is where `make fixtures` writes; tests run in this package's folder.
var fixtureDir = filepath.Join("..", "..", "testdata", "debezium")

// loaded is one scenario's recording, parsed loosely: the coverage test must
// not depend on the decoder it exists to feed.
type loaded struct {
	scenario scenario
	records  []recording.Record
	rows     []auditRow
	catalog  map[string][]column
}

type event struct {
	record  recording.Record
	schema  map[string]any
	payload map[string]any
}

func load(t *testing.T, sc scenario) loaded {
	t.Helper()
	dir := filepath.Join(fixtureDir, sc.name)
	records, err := recording.ReadFile(filepath.Join(dir, "records.jsonl"))
	if err != nil {
		t.Fatalf("scenario %s has no readable records (run `make fixtures`): %v", sc.name, err)
	}
	var rows []auditRow
	data, err := os.ReadFile(filepath.Join(dir, "rows.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r auditRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s/rows.jsonl: %v", sc.name, err)
		}
		rows = append(rows, r)
	}
	var catalog map[string][]column
	data, err = os.ReadFile(filepath.Join(dir, "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &catalog); err != nil {
		t.Fatalf("%s/catalog.json: %v", sc.name, err)
	}
	return loaded{scenario: sc, records: records, rows: rows, catalog: catalog}
}

// events returns the non-tombstone records of topics ending in suffix.
func (l loaded) events(t *testing.T, suffix string) []event {
	t.Helper()
	var out []event
	for _, r := range l.records {
		if !strings.HasSuffix(r.Topic, suffix) || r.Value == nil {
			continue
		}
		out = append(out, l.event(t, r))
	}
	return out
}

// event parses the value of r, a record that is not a tombstone.
func (l loaded) event(t *testing.T, r recording.Record) event {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("%s %s@%d: value is not a JSON object: %v", l.scenario.name, r.Topic, r.Offset, err)
	}
	e := event{record: r, payload: v}
	if l.scenario.schemas {
		e.schema, _ = v["schema"].(map[string]any)
		e.payload, _ = v["payload"].(map[string]any)
		if e.schema == nil {
			t.Fatalf("%s %s@%d: schemas are enabled but the value has no schema", l.scenario.name, r.Topic, r.Offset)
		}
	} else if _, ok := v["schema"]; ok {
		t.Fatalf("%s %s@%d: schemas are disabled but the value has a schema", l.scenario.name, r.Topic, r.Offset)
	}
	return e
}

func ops(events []event) map[string]int {
	n := map[string]int{}
	for _, e := range events {
		if op, ok := e.payload["op"].(string); ok {
			n[op]++
		}
	}
	return n
}

// TestFixturesCoverEveryOperation asserts the recordings hold every case the
// decoder must handle; a workload change that loses one fails here.
func TestFixturesCoverEveryOperation(t *testing.T) {
	for _, sc := range jsonScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l := load(t, sc)
			tables := ops(l.events(t, ".public.all_types"))
			for _, op := range []string{"r", "c", "u", "d"} {
				if tables[op] == 0 {
					t.Errorf("no %q event on all_types (have %v)", op, tables)
				}
			}
			camel := ops(l.events(t, ".public.CamelCase"))
			for _, op := range []string{"r", "c", "u", "t"} {
				if camel[op] == 0 {
					t.Errorf("no %q event on \"CamelCase\" (have %v)", op, camel)
				}
			}
			if ops(l.events(t, ".message"))["m"] == 0 {
				t.Error("no logical decoding message (op m)")
			}

			var tombstones, oldKey, newKey int
			for _, r := range l.records {
				if r.Value == nil && strings.HasSuffix(r.Topic, ".public.all_types") {
					tombstones++
				}
				if _, ok := r.Header("__debezium.oldkey"); ok {
					oldKey++
				}
				if _, ok := r.Header("__debezium.newkey"); ok {
					newKey++
				}
			}
			if tombstones < 2 {
				t.Errorf("%d tombstones, want one per delete (2: a delete and a primary-key change)", tombstones)
			}
			if oldKey == 0 || newKey == 0 {
				t.Errorf("primary-key change headers: %d oldkey, %d newkey; want both", oldKey, newKey)
			}

			// Every captured change has an audit row image, and the other way
			// round: a primary-key update is one audit row and two events.
			var changes int
			for _, e := range append(l.events(t, ".public.all_types"), l.events(t, ".public.CamelCase")...) {
				if _, ok := e.payload["op"]; ok {
					changes++
				}
			}
			var audited int
			for _, r := range l.rows {
				if r.Table != "outbox" {
					audited++
				}
			}
			if changes != audited+oldKey {
				t.Errorf("%d change events, but %d audited row changes + %d primary-key changes", changes, audited, oldKey)
			}
		})
	}
}

func TestFixturesCoverTransactions(t *testing.T) {
	for _, sc := range jsonScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l := load(t, sc)
			markers := map[string]int{}
			for _, e := range l.events(t, ".transaction") {
				status, _ := e.payload["status"].(string)
				markers[status]++
			}
			if markers["BEGIN"] == 0 || markers["BEGIN"] != markers["END"] {
				t.Errorf("transaction topic: %v, want matching BEGIN and END markers", markers)
			}

			type span struct{ firstLSN, commitLSN int64 }
			txs := map[string]*span{}
			sizes := map[string]int{}
			for _, e := range l.events(t, ".public.all_types") {
				tx, _ := e.payload["transaction"].(map[string]any)
				id, _ := tx["id"].(string)
				if id == "" {
					if src, _ := e.payload["source"].(map[string]any); src["snapshot"] == "false" {
						t.Errorf("streamed event at offset %d has no transaction block", e.record.Offset)
					}
					continue
				}
				// The id is "<txId>:<lsn>" and its LSN part differs per event.
				txID, _, _ := strings.Cut(id, ":")
				sizes[txID]++
				src, _ := e.payload["source"].(map[string]any)
				commit, lsn := sequence(t, src)
				if commit < 0 {
					continue
				}
				s := txs[txID]
				if s == nil {
					s = &span{firstLSN: lsn, commitLSN: commit}
					txs[txID] = s
				}
				s.firstLSN = min(s.firstLSN, lsn)
			}
			var multi bool
			for _, n := range sizes {
				multi = multi || n >= 3
			}
			if !multi {
				t.Errorf("no transaction with 3 or more all_types events: %v", sizes)
			}
			var interleaved bool
			for a, sa := range txs {
				for b, sb := range txs {
					interleaved = interleaved || (a != b && sa.firstLSN < sb.firstLSN && sa.commitLSN > sb.commitLSN)
				}
			}
			if !interleaved {
				t.Error("no pair of interleaved transactions (began first, committed last)")
			}
		})
	}
}

// TestFixturesTransactionsWholeInCommitOrder checks, on the real Debezium's
// records, what a resolver taking a partition's records straight from its
// queue would rely on (docs/transactions.md, "Towards the 2× target"):
// within one partition, the events of a source transaction are
// contiguous, and transactions follow the order of their ENDs on the
// transaction topic (commit order), also a transaction that began before
// another and committed after it.
func TestFixturesTransactionsWholeInCommitOrder(t *testing.T) {
	for _, sc := range jsonScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l := load(t, sc)
			commitOrder := map[string]int{} // txId -> place of its END
			for _, e := range l.events(t, ".transaction") {
				if status, _ := e.payload["status"].(string); status == "END" {
					id, _ := e.payload["id"].(string)
					txID, _, _ := strings.Cut(id, ":")
					commitOrder[txID] = len(commitOrder)
				}
			}
			type place struct {
				topic     string
				partition int32
			}
			last := map[place]string{}          // the transaction of the partition's last event
			done := map[place]map[string]bool{} // transactions the partition has moved past
			checked := 0
			for _, r := range l.records {
				if r.Value == nil || strings.HasSuffix(r.Topic, ".transaction") {
					continue
				}
				e := l.event(t, r)
				tx, _ := e.payload["transaction"].(map[string]any)
				id, _ := tx["id"].(string)
				if id == "" {
					continue // a snapshot read or a message without a transaction block
				}
				txID, _, _ := strings.Cut(id, ":")
				at, ok := commitOrder[txID]
				if !ok {
					t.Errorf("%s@%d: transaction %s has no END on the transaction topic", r.Topic, r.Offset, txID)
					continue
				}
				p := place{r.Topic, r.Partition}
				prev, seen := last[p]
				switch {
				case done[p][txID]:
					t.Errorf("%s[%d]@%d: transaction %s again after another transaction's events", r.Topic, r.Partition, r.Offset, txID)
				case seen && prev != txID && commitOrder[prev] > at:
					t.Errorf("%s[%d]@%d: transaction %s (END %d) after %s (END %d)", r.Topic, r.Partition, r.Offset, txID, at, prev, commitOrder[prev])
				}
				if seen && prev != txID {
					if done[p] == nil {
						done[p] = map[string]bool{}
					}
					done[p][prev] = true
				}
				last[p] = txID
				checked++
			}
			if checked == 0 || len(commitOrder) < 2 {
				t.Fatalf("%d events with a transaction block, %d ENDs: nothing to check", checked, len(commitOrder))
			}
		})
	}
}

// sequence reads source.sequence, ["lastCommitLsn","lsn"], as numbers. The
// first event Debezium streams after its snapshot has a null lastCommitLsn:
// commit is then -1.
func sequence(t *testing.T, src map[string]any) (commit, lsn int64) {
	t.Helper()
	raw, _ := src["sequence"].(string)
	var pair []*string
	if err := json.Unmarshal([]byte(raw), &pair); err != nil || len(pair) != 2 || pair[1] == nil {
		t.Fatalf("source.sequence %q is not a pair of LSNs", raw)
	}
	if pair[0] == nil {
		pair[0] = new("-1")
	}
	commit, err1 := strconv.ParseInt(*pair[0], 10, 64)
	lsn, err2 := strconv.ParseInt(*pair[1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("source.sequence %q: %v %v", raw, err1, err2)
	}
	return commit, lsn
}

func TestFixturesCoverEveryType(t *testing.T) {
	// The logical type each column must arrive with when schemas are on,
	// per decimal and time mode; "" means a plain Connect type.
	wantNames := map[string]string{
		"c_numeric": "org.apache.kafka.connect.data.Decimal", "c_numeric_free": "io.debezium.data.VariableScaleDecimal",
		"c_uuid": "io.debezium.data.Uuid", "c_json": "io.debezium.data.Json", "c_jsonb": "io.debezium.data.Json",
		"c_date": "io.debezium.time.Date", "c_time": "io.debezium.time.MicroTime", "c_time3": "io.debezium.time.Time",
		"c_timetz": "io.debezium.time.ZonedTime", "c_timestamp": "io.debezium.time.MicroTimestamp",
		"c_timestamp3": "io.debezium.time.Timestamp", "c_timestamptz": "io.debezium.time.ZonedTimestamp",
		"c_interval": "io.debezium.time.MicroDuration", "c_enum": "io.debezium.data.Enum",
		"c_bit": "io.debezium.data.Bits", "c_varbit": "io.debezium.data.Bits", "c_money": "org.apache.kafka.connect.data.Decimal",
		"c_xml": "io.debezium.data.Xml", "c_point": "io.debezium.data.geometry.Point",
	}
	modeNames := map[string]map[string]string{
		"string": {"c_numeric": "", "c_numeric_free": "", "c_money": ""},
		"double": {"c_numeric": "", "c_numeric_free": "", "c_money": ""},
	}
	connectTime := map[string]string{
		"c_date": "org.apache.kafka.connect.data.Date", "c_time": "org.apache.kafka.connect.data.Time",
		"c_time3": "org.apache.kafka.connect.data.Time", "c_timestamp": "org.apache.kafka.connect.data.Timestamp",
		"c_timestamp3": "org.apache.kafka.connect.data.Timestamp",
	}
	for _, sc := range jsonScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l := load(t, sc)
			events := l.events(t, ".public.all_types")
			nonNull, null := map[string]bool{}, map[string]bool{}
			for _, e := range events {
				after, _ := e.payload["after"].(map[string]any)
				for col, v := range after {
					if v == nil {
						null[col] = true
					} else {
						nonNull[col] = true
					}
				}
			}
			columns := l.catalog["public.all_types"]
			if len(columns) < 38 {
				t.Fatalf("catalog lists %d all_types columns, want the 38 of workload.sql", len(columns))
			}
			for _, c := range columns {
				if !nonNull[c.Name] {
					t.Errorf("column %q (%s) never has a value", c.Name, c.Type)
				}
				if c.Name != "id" && !null[c.Name] {
					t.Errorf("column %q (%s) is never NULL", c.Name, c.Type)
				}
			}
			if !sc.schemas {
				return
			}
			got := afterSchemaNames(t, events[0])
			for col, want := range wantNames {
				if m, ok := modeNames[sc.decimalMode][col]; ok {
					want = m
				}
				if m, ok := connectTime[col]; ok && sc.timeMode == "connect" {
					want = m
				}
				if col == "c_interval" && sc.intervalMode == "string" {
					want = "io.debezium.time.Interval"
				}
				if got[col] != want {
					t.Errorf("column %s has schema name %q, want %q", col, got[col], want)
				}
			}
		})
	}
}

func afterSchemaNames(t *testing.T, e event) map[string]string {
	t.Helper()
	names := map[string]string{}
	fields, _ := e.schema["fields"].([]any)
	for _, f := range fields {
		f, _ := f.(map[string]any)
		if f["field"] != "after" {
			continue
		}
		cols, _ := f["fields"].([]any)
		for _, c := range cols {
			c, _ := c.(map[string]any)
			name, _ := c["name"].(string)
			names[c["field"].(string)] = name
		}
	}
	if len(names) == 0 {
		t.Fatalf("event at offset %d has no after schema", e.record.Offset)
	}
	return names
}

func TestFixturesCoverValuesThatBite(t *testing.T) {
	for _, sc := range jsonScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l := load(t, sc)
			// Compare decoded strings: Jackson escapes characters outside the
			// BMP (the emoji) as surrogate pairs.
			var all strings.Builder
			for _, r := range l.records {
				var v any
				if r.Value != nil && json.Unmarshal(r.Value, &v) == nil {
					collectStrings(v, &all)
				}
			}
			text := all.String()
			for _, want := range []string{"\x00infinity\x00", "\x00-infinity\x00", "\x00Grüße 👋 日本語 \"quoted\" \\ back\\slash\x00", "\x00Order Id\x00"} {
				if !strings.Contains(text, want) {
					t.Errorf("no record contains %s", want)
				}
			}
			placeholder := strings.Contains(text, "__debezium_unavailable_value")
			if sc.identity == "DEFAULT" && !placeholder {
				t.Error("REPLICA IDENTITY DEFAULT but no unchanged-TOAST placeholder recorded")
			}
			if sc.identity == "FULL" && placeholder {
				t.Error("REPLICA IDENTITY FULL should give full images, but a placeholder was recorded")
			}
			var fullBefore bool
			for _, e := range l.events(t, ".public.all_types") {
				before, _ := e.payload["before"].(map[string]any)
				fullBefore = fullBefore || (e.payload["op"] == "u" && before["c_text"] != nil)
			}
			if fullBefore != (sc.identity == "FULL") {
				t.Errorf("full before images on updates = %v, want %v for REPLICA IDENTITY %s", fullBefore, sc.identity == "FULL", sc.identity)
			}
		})
	}
}

// collectStrings writes every string and object key in v, each between NUL
// bytes so a test can look for whole values.
func collectStrings(v any, b *strings.Builder) {
	switch v := v.(type) {
	case string:
		b.WriteString("\x00" + v + "\x00")
	case []any:
		for _, e := range v {
			collectStrings(e, b)
		}
	case map[string]any:
		for k, e := range v {
			b.WriteString("\x00" + k + "\x00")
			collectStrings(e, b)
		}
	}
}

func TestFixturesCoverTheOutbox(t *testing.T) {
	for _, sc := range jsonScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l := load(t, sc)
			var events int
			types := map[string]bool{}
			for _, r := range l.records {
				if !strings.Contains(r.Topic, ".outbox.event.") {
					continue
				}
				events++
				id, okID := r.Header("id")
				typ, okType := r.Header("eventType")
				if !okID || len(id) != 36 || !okType {
					t.Errorf("outbox record %s@%d: id header %q, eventType header %q", r.Topic, r.Offset, id, typ)
				}
				types[string(typ)] = true
				var v map[string]any
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatalf("outbox value: %v", err)
				}
				payload := v
				if sc.schemas {
					payload, _ = v["payload"].(map[string]any)
				}
				if payload["id"] == nil {
					t.Errorf("outbox record %s@%d: payload %s is not the expanded JSON object", r.Topic, r.Offset, r.Value)
				}
			}
			if events != outboxEvents {
				t.Errorf("%d outbox events, want %d (the Event Router ignores the delete)", events, outboxEvents)
			}
			for _, want := range []string{"OrderCreated", "OrderPaid", "CustomerRenamed"} {
				if !types[want] {
					t.Errorf("no outbox event of type %s", want)
				}
			}
		})
	}
}

// jsonScenarios are the scenarios whose records are JSON, which these
// checks read. The Avro scenario records the same workload through the Avro
// converter; debezium's TestAvroEqualsJSON proves it decodes to the same
// changes as its JSON twin, and TestGolden to PostgreSQL's own rows.
func jsonScenarios() []scenario {
	var out []scenario
	for _, sc := range scenarios {
		if !sc.avro {
			out = append(out, sc)
		}
	}
	return out
}
