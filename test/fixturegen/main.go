// Command fixturegen records the Debezium fixtures under testdata/debezium:
// it runs one workload (workload.sql, workload.go) through the real Debezium
// on the local stack under several connector settings, and saves every Kafka
// record together with the row images PostgreSQL returned for them.
//
//	make fixtures                    # stack up, then all scenarios
//	go run ./test/fixturegen -out testdata/debezium [-only identity_default]
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// scenario is one connector setting the workload runs under.
type scenario struct {
	name        string
	description string
	identity    string // REPLICA IDENTITY of the captured tables
	schemas     bool   // key/value converter schemas.enable
	decimalMode string // decimal.handling.mode
	timeMode    string // time.precision.mode
	// intervalMode is interval.handling.mode: set on every scenario,
	// because the connector files the recorder starts from ship "string"
	// while these scenarios were recorded under Debezium's "numeric".
	intervalMode string
	// avro puts the connectors on Apicurio's Avro converter in the
	// Confluent wire format; the schemas its records name are saved beside
	// them (schemas.json), so decoding tests need no registry.
	avro bool
}

var scenarios = []scenario{
	{"identity_default", "REPLICA IDENTITY DEFAULT, schemas enabled, decimal.handling.mode=precise", "DEFAULT", true, "precise", "adaptive", "numeric", false},
	{"identity_full", "REPLICA IDENTITY FULL, schemas enabled, decimal.handling.mode=precise", "FULL", true, "precise", "adaptive", "numeric", false},
	{"schemaless", "REPLICA IDENTITY DEFAULT, schemas disabled, decimal.handling.mode=precise", "DEFAULT", false, "precise", "adaptive", "numeric", false},
	{"decimal_string", "REPLICA IDENTITY DEFAULT, schemas enabled, decimal.handling.mode=string", "DEFAULT", true, "string", "adaptive", "numeric", false},
	{"decimal_double", "REPLICA IDENTITY DEFAULT, schemas enabled, decimal.handling.mode=double, time.precision.mode=connect", "DEFAULT", true, "double", "connect", "numeric", false},
	{"shipped", "the shipped connector files (docker/connectors): decimal.handling.mode=string, interval.handling.mode=string, numeric source types propagated", "DEFAULT", true, "string", "adaptive", "string", false},
	{"shipped_avro", "shipped, with both connectors on Apicurio's Avro converter (Confluent wire format, contentIds)", "DEFAULT", true, "string", "adaptive", "string", true},
}

func (sc scenario) prefix() string { return "fixture_" + sc.name }

func main() {
	out := flag.String("out", "testdata/debezium", "folder to write the fixtures to")
	only := flag.String("only", "", "record only this scenario")
	timeout := flag.Duration("timeout", 3*time.Minute, "time limit per scenario")
	flag.Parse()
	if err := run(*out, *only, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "fixturegen:", err)
		os.Exit(1)
	}
}

func run(out, only string, timeout time.Duration) error {
	env, err := stacktest.LoadEnv()
	if err != nil {
		return err
	}
	if err := env.Check(context.Background()); err != nil {
		return err
	}
	for _, sc := range scenarios {
		if only != "" && sc.name != only {
			continue
		}
		t0 := time.Now()
		n, err := record(env, sc, filepath.Join(out, sc.name), timeout)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		fmt.Printf("%-18s %4d records in %s\n", sc.name, n, time.Since(t0).Round(100*time.Millisecond))
	}
	return nil
}

func record(env stacktest.Env, sc scenario, dir string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// A fixed ID keeps topic names, source.db and source.name the same from
	// one recording to the next; leftovers of an interrupted run go first.
	id := sc.prefix()
	if err := stacktest.DropDatabase(ctx, env.AdminURL, id); err != nil {
		return 0, err
	}
	if err := stacktest.DeleteTopics(ctx, env.KafkaBootstrap, id); err != nil {
		return 0, err
	}
	sb, err := stacktest.NewSandbox(ctx, env, id)
	if err != nil {
		return 0, err
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := sb.Close(cctx); err != nil {
			fmt.Fprintf(os.Stderr, "fixturegen: teardown of %s: %v\n", sb.ID, err)
		}
	}()

	a, err := pgx.Connect(ctx, sb.SourceURL)
	if err != nil {
		return 0, err
	}
	defer a.Close(context.Background())
	b, err := pgx.Connect(ctx, sb.SourceURL)
	if err != nil {
		return 0, err
	}
	defer b.Close(context.Background())

	setup := []string{schemaSQL}
	for _, table := range []string{"all_types", `"CamelCase"`, "outbox"} {
		setup = append(setup, fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY %s", table, sc.identity))
	}
	setup = append(setup, snapshotSQL...)
	for _, sql := range setup {
		if _, err := a.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("setup: %w\n%s", err, sql)
		}
	}

	// The outbox connector's Event Router routes into the sandbox's prefix so
	// that parallel runs and teardown stay isolated; the stack's own default
	// (outbox.event.<aggregatetype>) differs only in that prefix.
	tables, err := tableConnector(sc, env)
	if err != nil {
		return 0, err
	}
	outbox, err := outboxConnector(sc, sb.TopicPrefix, env)
	if err != nil {
		return 0, err
	}
	if _, err := sb.RegisterDebezium(ctx, "tables", tables); err != nil {
		return 0, err
	}
	if _, err := sb.RegisterDebezium(ctx, "outbox", outbox); err != nil {
		return 0, err
	}

	if err := runSteps(ctx, map[string]*pgx.Conn{"a": a, "b": b}, streamSteps); err != nil {
		return 0, err
	}

	records, err := readAll(ctx, env, sb.TopicPrefix)
	if err != nil {
		return 0, err
	}
	rows, err := auditRows(ctx, a)
	if err != nil {
		return 0, err
	}
	catalog, err := readCatalog(ctx, a)
	if err != nil {
		return 0, err
	}
	if sc.avro {
		if err := saveSchemas(dir, env, records); err != nil {
			return 0, err
		}
	}
	return len(records), save(dir, sc, records, rows, catalog, map[string]map[string]string{
		"tables": tables, "outbox": outbox,
	})
}

func tableConnector(sc scenario, env stacktest.Env) (map[string]string, error) {
	schemas := fmt.Sprint(sc.schemas)
	cfg := map[string]string{
		"table.include.list":             `public.all_types,public.CamelCase,public.fixture_end`,
		"decimal.handling.mode":          sc.decimalMode,
		"time.precision.mode":            sc.timeMode,
		"interval.handling.mode":         sc.intervalMode,
		"provide.transaction.metadata":   "true",
		"skipped.operations":             "none", // Debezium skips truncates by default
		"key.converter.schemas.enable":   schemas,
		"value.converter.schemas.enable": schemas,
		// Debezium's default, which the shipped connector files turn off:
		// the fixtures record what a connector left at its defaults
		// writes, context headers included, which pgsink must read past.
		"extended.headers.enabled": "true",
	}
	if sc.avro {
		registry, err := env.Registry()
		if err != nil {
			return nil, err
		}
		for k, v := range stacktest.AvroConverter(registry) {
			cfg[k] = v
		}
	}
	return cfg, nil
}

// saveSchemas writes schemas.json: the registry's schema text of every id
// the Avro records carry.
func saveSchemas(dir string, env stacktest.Env, records []recording.Record) error {
	registry, err := env.Registry()
	if err != nil {
		return err
	}
	schemas := map[string]string{}
	for _, r := range records {
		for _, b := range [][]byte{r.Key, r.Value} {
			if len(b) < 5 || b[0] != 0 {
				continue
			}
			id := binary.BigEndian.Uint32(b[1:5])
			key := strconv.FormatUint(uint64(id), 10)
			if _, ok := schemas[key]; ok {
				continue
			}
			if schemas[key], err = stacktest.RegistrySchema(registry, id); err != nil {
				return fmt.Errorf("schema id %d: %w", id, err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "schemas.json"), schemas)
}

func outboxConnector(sc scenario, prefix string, env stacktest.Env) (map[string]string, error) {
	cfg := stacktest.OutboxRouter(prefix)
	schemas := fmt.Sprint(sc.schemas)
	cfg["decimal.handling.mode"] = sc.decimalMode
	cfg["interval.handling.mode"] = sc.intervalMode
	cfg["key.converter.schemas.enable"] = schemas
	cfg["value.converter.schemas.enable"] = schemas
	cfg["extended.headers.enabled"] = "true" // as tableConnector's
	if sc.avro {
		registry, err := env.Registry()
		if err != nil {
			return nil, err
		}
		for k, v := range stacktest.AvroConverter(registry) {
			cfg[k] = v
		}
		// The router's expanded payload is a Connect struct the Avro
		// converter writes as a record; the JSON delegate is for JSON.
		delete(cfg, "value.converter.delegate.converter.type")
	}
	return cfg, nil
}

// readAll reads the sandbox's topics until the end marker and every outbox
// event have arrived and nothing new came for two seconds, so late records of
// other topics are not cut off.
func readAll(ctx context.Context, env stacktest.Env, prefix string) ([]recording.Record, error) {
	endTopic := prefix + ".public.fixture_end"
	var lastLen int
	var quietSince time.Time
	records, err := stacktest.ReadUntil(ctx, env.KafkaBootstrap, prefix, func(rs []recording.Record) bool {
		var sawEnd bool
		var outbox int
		for _, r := range rs {
			sawEnd = sawEnd || r.Topic == endTopic
			if strings.HasPrefix(r.Topic, prefix+".outbox.event.") {
				outbox++
			}
		}
		if len(rs) != lastLen {
			lastLen, quietSince = len(rs), time.Now()
		}
		return sawEnd && outbox >= outboxEvents && time.Since(quietSince) > 2*time.Second
	})
	if err != nil {
		return nil, err
	}
	// The end marker is bookkeeping, not a fixture.
	kept := records[:0]
	for _, r := range records {
		if r.Topic != endTopic {
			kept = append(kept, r)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool {
		if kept[i].Topic != kept[j].Topic {
			return kept[i].Topic < kept[j].Topic
		}
		if kept[i].Partition != kept[j].Partition {
			return kept[i].Partition < kept[j].Partition
		}
		return kept[i].Offset < kept[j].Offset
	})
	return kept, nil
}

// auditRow is one row image as PostgreSQL rendered it (row_to_json), in the
// order the changes happened.
type auditRow struct {
	Seq   int64           `json:"seq"`
	Table string          `json:"table"`
	Op    string          `json:"op"`
	TxID  int64           `json:"txid"`
	Old   json.RawMessage `json:"old,omitempty"`
	New   json.RawMessage `json:"new,omitempty"`
}

func auditRows(ctx context.Context, conn *pgx.Conn) ([]auditRow, error) {
	rows, err := conn.Query(ctx, `SELECT seq, tbl, op, txid, old::text, new::text FROM fixture_audit ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (auditRow, error) {
		var r auditRow
		var oldJSON, newJSON *string
		err := row.Scan(&r.Seq, &r.Table, &r.Op, &r.TxID, &oldJSON, &newJSON)
		if oldJSON != nil {
			r.Old = json.RawMessage(*oldJSON)
		}
		if newJSON != nil {
			r.New = json.RawMessage(*newJSON)
		}
		return r, err
	})
}

// column is one column of a captured table, as the schemaless fixtures need
// it: decoding without a schema takes types from the target catalog.
type column struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // format_type(), e.g. numeric(12,2)
	NotNull  bool   `json:"not_null"`
	Position int    `json:"position"`
}

func readCatalog(ctx context.Context, conn *pgx.Conn) (map[string][]column, error) {
	rows, err := conn.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attnum
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relname IN ('all_types', 'CamelCase', 'outbox')
		   AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY c.relname, a.attnum`)
	if err != nil {
		return nil, err
	}
	catalog := map[string][]column{}
	var table string
	var c column
	_, err = pgx.ForEachRow(rows, []any{&table, &c.Name, &c.Type, &c.NotNull, &c.Position}, func() error {
		catalog["public."+table] = append(catalog["public."+table], c)
		return nil
	})
	return catalog, err
}

// save writes the scenario's files, records exactly as Kafka returned them.
func save(dir string, sc scenario, records []recording.Record, rows []auditRow,
	catalog map[string][]column, connectors map[string]map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "records.jsonl"))
	if err != nil {
		return err
	}
	if err := recording.Write(f, records); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	meta := map[string]any{
		"scenario":     sc.name,
		"description":  sc.description,
		"debezium":     "3.6.1.Final",
		"kafka":        "4.3.0",
		"postgres":     "15",
		"regenerate":   "make fixtures",
		"topic_prefix": sc.prefix(),
		"connectors":   connectors, // overrides on top of stacktest.DebeziumPostgres
	}
	if err := writeJSON(filepath.Join(dir, "scenario.json"), meta); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "catalog.json"), catalog); err != nil {
		return err
	}
	rf, err := os.Create(filepath.Join(dir, "rows.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(rf)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			rf.Close()
			return err
		}
	}
	return rf.Close()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
