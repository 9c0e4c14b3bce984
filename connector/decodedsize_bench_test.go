package connector

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/sink"
	"github.com/pgsink/pgsink/test/avrorow"
)

// registrySchemas is a SchemaSource of schemas by decimal id.
type registrySchemas map[string]string

func (m registrySchemas) Schema(id uint32) (string, error) {
	if s, ok := m[strconv.FormatUint(uint64(id), 10)]; ok {
		return s, nil
	}
	return "", debezium.ErrUnknownSchemaID
}

// benchRowItems decodes make bench's row shape in Avro (test/avrorow) into
// the Items a batch holds.
func benchRowItems(b *testing.B) []sink.Item {
	schemas, rows, err := avrorow.Load(filepath.Join("..", "testdata", "debezium", "shipped_avro"))
	if err != nil {
		b.Fatal(err)
	}
	dec := debezium.NewDecoder(debezium.Options{Schemas: registrySchemas(schemas),
		Encoding: func(string) debezium.Encoding { return debezium.EncodingAvro }})
	items := make([]sink.Item, 0, len(rows))
	for _, r := range rows {
		rec := debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
		ch, err := dec.Decode(rec)
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, sink.Item{Record: rec, Change: ch})
	}
	return items
}

// BenchmarkDecodedBytes is the estimate every record taken into a batch
// pays (decodedBytes), on make bench's row shape in Avro.
func BenchmarkDecodedBytes(b *testing.B) {
	items := benchRowItems(b)
	b.ReportAllocs()
	var sum int64
	for b.Loop() {
		for i := range items {
			sum += decodedBytes(&items[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/record")
	if sum == 0 {
		b.Fatal("no bytes estimated")
	}
}
