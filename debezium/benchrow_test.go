package debezium

import (
	"testing"

	"github.com/pgsink/pgsink/test/avrorow"
)

// BenchmarkDecodeAvroBenchRow decodes make bench's row shape in Avro (see
// test/avrorow): key and value of every recorded all_types event once per
// iteration.
func BenchmarkDecodeAvroBenchRow(b *testing.B) {
	f := fixtureNamed(b, loadFixtures(b), "shipped_avro")
	schemas, rows, err := avrorow.Load(fixtureDir + "/shipped_avro")
	if err != nil {
		b.Fatal(err)
	}
	f.schemas.byID = schemas
	d := NewDecoder(f.options())
	var size int64
	recs := make([]Record, len(rows))
	for i, r := range rows {
		recs[i] = toRecord(r)
		ch, err := d.Decode(recs[i])
		if err != nil {
			b.Fatal(err)
		}
		if img := ch.After; img != nil && len(img) != len(avrorow.Columns) {
			b.Fatalf("%d columns, want %d", len(img), len(avrorow.Columns))
		}
		size += int64(len(r.Key) + len(r.Value))
	}
	decodeLoop(b, d, recs, size)
}
