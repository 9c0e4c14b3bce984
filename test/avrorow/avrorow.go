// Package avrorow derives make bench's row shape in Avro from the recorded
// shipped_avro fixture (testdata/debezium), for benchmarks of Avro
// decoding: the recorded Envelope schema with its Value record cut to the
// all_types columns of the bench row's types, and each recorded all_types
// event re-encoded with it — values, source block and all as recorded.
package avrorow

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/pgsink/pgsink/test/recording"
)

// Columns are the all_types columns of the types of make bench's row,
// orders(id bigint, customer_id bigint, status text, amount numeric(12,2),
// created_at timestamptz, attrs jsonb).
var Columns = []string{"id", "c_bigint", "c_text", "c_numeric", "c_timestamptz", "c_jsonb"}

// ID is the schema id the cut schema is registered under.
const ID = 1 << 20

// Load reads the fixture in dir and returns the registry's schemas by id
// (decimal text, as in schemas.json; the recorded ones and the cut one)
// and the re-encoded all_types change events.
func Load(dir string) (map[string]string, []recording.Record, error) {
	records, err := recording.ReadFile(filepath.Join(dir, "records.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "schemas.json"))
	if err != nil {
		return nil, nil, err
	}
	schemas := map[string]string{}
	if err := json.Unmarshal(data, &schemas); err != nil {
		return nil, nil, err
	}
	keep := map[string]bool{}
	for _, c := range Columns {
		keep[c] = true
	}
	var out []recording.Record
	var cut avro.Schema
	for _, r := range records {
		if !strings.HasSuffix(r.Topic, ".public.all_types") || r.Value == nil {
			continue
		}
		text := schemas[strconv.FormatUint(uint64(binary.BigEndian.Uint32(r.Value[1:5])), 10)]
		full, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, nil, err
		}
		if cut == nil {
			cutText, err := cutSchema(text, keep)
			if err != nil {
				return nil, nil, err
			}
			if cut, err = avro.ParseWithCache(cutText, "", &avro.SchemaCache{}); err != nil {
				return nil, nil, err
			}
			schemas[strconv.Itoa(ID)] = cutText
		}
		var v map[string]any
		if err := avro.Unmarshal(full, r.Value[5:], &v); err != nil {
			return nil, nil, err
		}
		for _, img := range []string{"before", "after"} {
			row, ok := v[img].(map[string]any)
			if !ok {
				continue
			}
			// hamba gives a union's record value under its type's name.
			for name, inner := range row {
				if strings.HasSuffix(name, ".Value") {
					row = inner.(map[string]any)
				}
			}
			for k := range row {
				if !keep[k] {
					delete(row, k)
				}
			}
		}
		body, err := avro.Marshal(cut, v)
		if err != nil {
			return nil, nil, fmt.Errorf("re-encode %s@%d: %w", r.Topic, r.Offset, err)
		}
		r.Value = append(binary.BigEndian.AppendUint32([]byte{0}, ID), body...)
		out = append(out, r)
	}
	return schemas, out, nil
}

// cutSchema keeps only the kept fields of the envelope's Value record
// (defined in before, referred to by after).
func cutSchema(text string, keep map[string]bool) (string, error) {
	var env map[string]any
	if err := json.Unmarshal([]byte(text), &env); err != nil {
		return "", err
	}
	for _, f := range env["fields"].([]any) {
		fm := f.(map[string]any)
		if fm["name"] != "before" {
			continue
		}
		value := fm["type"].([]any)[1].(map[string]any)
		var kept []any
		for _, c := range value["fields"].([]any) {
			if keep[c.(map[string]any)["name"].(string)] {
				kept = append(kept, c)
			}
		}
		value["fields"] = kept
	}
	out, err := json.Marshal(env)
	return string(out), err
}
