package sink

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/avrorow"
)

// mapSchemas is a SchemaSource of schemas by decimal id.
type mapSchemas map[string]string

func (m mapSchemas) Schema(id uint32) (string, error) {
	if s, ok := m[strconv.FormatUint(uint64(id), 10)]; ok {
		return s, nil
	}
	return "", debezium.ErrUnknownSchemaID
}

// BenchmarkAvroEvent measures pgsink's CPU per event on Avro before SQL:
// make bench's row shape (test/avrorow) decoded as the router's decoders
// decode it (no catalog), its after image's values bound for their columns
// and encoded as one binary COPY row, as a batch write does.
func BenchmarkAvroEvent(b *testing.B) {
	schemas, rows, err := avrorow.Load(filepath.Join("..", "testdata", "debezium", "shipped_avro"))
	if err != nil {
		b.Fatal(err)
	}
	columns := []benchColumn{{"id", "integer", "int4"}, {"c_bigint", "bigint", "int8"}, {"c_text", "text", "text"},
		{"c_numeric", "numeric(12,2)", "numeric"}, {"c_timestamptz", "timestamp with time zone", "timestamptz"}, {"c_jsonb", "jsonb", "jsonb"}}
	binders, enc := copyColumns(b, columns)
	dec := debezium.NewDecoder(debezium.Options{Schemas: mapSchemas(schemas),
		Encoding: func(string) debezium.Encoding { return debezium.EncodingAvro }})
	records := make([]debezium.Record, len(rows))
	for i, r := range rows {
		records[i] = debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
	}
	row := make([]any, len(columns))
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	cpu0 := benchCPU(b)
	for b.Loop() {
		for _, rec := range records {
			ch, err := dec.Decode(rec)
			if err != nil {
				b.Fatal(err)
			}
			if ch.After == nil {
				continue
			}
			for i, c := range columns {
				f, _ := ch.After.Get(c.name)
				row[i] = f.Value
				if f.Value != nil && !f.Unchanged && binders[i] != nil {
					if row[i], err = binders[i](f.Value); err != nil {
						b.Fatal(err)
					}
				}
			}
			if buf, err = enc.AppendRow(buf[:0], 0, row); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric((benchCPU(b)-cpu0).Seconds()*1e9/(float64(len(records))*float64(b.N)), "cpu-ns/event")
}

// BenchmarkRouterItemAvro is the path every record takes from its Kafka
// bytes to a batch's Item (Router.Item): make bench's row shape in Avro,
// decoded and routed to a table whose catalog is already cached.
func BenchmarkRouterItemAvro(b *testing.B) {
	schemas, rows, err := avrorow.Load(filepath.Join("..", "testdata", "debezium", "shipped_avro"))
	if err != nil {
		b.Fatal(err)
	}
	topic := rows[0].Topic
	r := testRouter(b, "kafka: { bootstrap.servers: k, group.id: g }\npostgres: { url: u }\nschema_registry: { url: http://registry:8081 }\n"+
		"tables:\n  - topic: "+topic+"\n    target: public.all_types\n    encoding: avro\n", config.TableName{Schema: "public", Name: "all_types"})
	dec := debezium.NewDecoder(debezium.Options{Schemas: mapSchemas(schemas),
		Encoding: func(string) debezium.Encoding { return debezium.EncodingAvro }})
	records := make([]debezium.Record, len(rows))
	for i, row := range rows {
		records[i] = debezium.Record{Topic: row.Topic, Partition: row.Partition, Offset: row.Offset, Key: row.Key, Value: row.Value}
	}
	// The target has the event schema's columns: no drift to resolve.
	first, err := dec.Decode(records[0])
	if err != nil {
		b.Fatal(err)
	}
	target := r.tables["public.all_types"]
	for _, c := range first.Columns {
		target.Columns = append(target.Columns, Column{Name: c.Name, Source: c.Name})
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := benchCPU(b)
	for b.Loop() {
		for _, rec := range records {
			it, ok, err := r.Item(ctx, dec, rec)
			if err != nil || !ok || it.Err != nil {
				b.Fatalf("record %d: ok %v, err %v, item error %v", rec.Offset, ok, err, it.Err)
			}
		}
	}
	b.ReportMetric((benchCPU(b)-cpu0).Seconds()*1e9/(float64(len(records))*float64(b.N)), "cpu-ns/event")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		for _, rec := range records {
			_, _, _ = r.Item(ctx, dec, rec)
		}
	}))/float64(len(records)), "allocs/event")
}
