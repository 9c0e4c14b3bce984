package debezium

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// benchRowFields are the all_types columns of make bench's row types:
// orders(id bigint, customer_id bigint, status text, amount numeric(12,2),
// created_at timestamptz, attrs jsonb).
var benchRowFields = map[string]bool{"id": true, "c_bigint": true, "c_text": true, "c_numeric": true, "c_timestamptz": true, "c_jsonb": true}

// benchRowRecords derives make bench's row shape from the recorded Avro
// fixture: the recorded Envelope schema with its Value record cut to the
// six columns of benchRowFields, registered under a new id, and each
// recorded all_types event re-encoded with it (values, source block and
// all, as recorded).
func benchRowRecords(tb testing.TB) (Options, []Record) {
	f := fixtureNamed(tb, loadFixtures(tb), "shipped_avro")
	var recs []Record
	var cut avro.Schema
	const cutID = 1 << 20
	for _, r := range f.records {
		if !strings.HasSuffix(r.Topic, ".public.all_types") || r.Value == nil {
			continue
		}
		id := binary.BigEndian.Uint32(r.Value[1:5])
		text, err := f.schemas.Schema(id)
		if err != nil {
			tb.Fatal(err)
		}
		full, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			tb.Fatal(err)
		}
		if cut == nil {
			var env map[string]any
			if err := json.Unmarshal([]byte(text), &env); err != nil {
				tb.Fatal(err)
			}
			for _, fl := range env["fields"].([]any) {
				fm := fl.(map[string]any)
				if fm["name"] != "before" {
					continue
				}
				value := fm["type"].([]any)[1].(map[string]any)
				var kept []any
				for _, c := range value["fields"].([]any) {
					if benchRowFields[c.(map[string]any)["name"].(string)] {
						kept = append(kept, c)
					}
				}
				value["fields"] = kept
			}
			cutText, _ := json.Marshal(env)
			if cut, err = avro.ParseWithCache(string(cutText), "", &avro.SchemaCache{}); err != nil {
				tb.Fatal(err)
			}
			f.schemas.byID["1048576"] = string(cutText)
		}
		var v any
		if err := avro.Unmarshal(full, r.Value[5:], &v); err != nil {
			tb.Fatal(err)
		}
		for _, img := range []string{"before", "after"} {
			if row, ok := v.(map[string]any)[img].(map[string]any); ok {
				// hamba gives a union's record value under its type name.
				for name, inner := range row {
					if strings.HasSuffix(name, ".Value") {
						row = inner.(map[string]any)
					}
				}
				for k := range row {
					if !benchRowFields[k] {
						delete(row, k)
					}
				}
			}
		}
		body, err := avro.Marshal(cut, v)
		if err != nil {
			tb.Fatal(err)
		}
		rec := toRecord(r)
		rec.Value = binary.BigEndian.AppendUint32([]byte{0}, cutID)
		rec.Value = append(rec.Value, body...)
		recs = append(recs, rec)
	}
	return f.options(), recs
}

// BenchmarkDecodeAvroBenchRow decodes make bench's row shape in Avro (see
// benchRowRecords): key and value, every recorded event once per
// iteration.
func BenchmarkDecodeAvroBenchRow(b *testing.B) {
	opts, recs := benchRowRecords(b)
	d := NewDecoder(opts)
	var size int64
	for _, rec := range recs {
		if _, err := d.Decode(rec); err != nil {
			b.Fatal(err)
		}
		size += int64(len(rec.Key) + len(rec.Value))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		for _, rec := range recs {
			if _, err := d.Decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(len(recs)) * float64(b.N)
	b.ReportMetric(n/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(size)/float64(len(recs)), "bytes/record")
	b.ReportMetric(float64(len(recs)), "records/op")
}
