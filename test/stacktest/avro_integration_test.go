//go:build integration

package stacktest_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationAvroConverter: a Debezium connector on the stack's Apicurio
// converter writes keys and values in the Confluent wire format, with schema
// ids the registry's Confluent-compatible API serves.
func TestIntegrationAvroConverter(t *testing.T) {
	st := stacktest.New(t)
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE avro_probe (id int PRIMARY KEY, note text)`)
	st.Exec(`INSERT INTO avro_probe VALUES (1, 'one')`)
	st.RegisterDebezium("avro", stacktest.AvroConverter(registry))
	records := st.ReadUntil(90*time.Second, func(rs []recording.Record) bool { return len(rs) > 0 })
	r := records[0]
	for side, b := range map[string][]byte{"key": r.Key, "value": r.Value} {
		if len(b) < 6 || b[0] != 0 {
			t.Fatalf("%s %x: no Confluent magic byte and schema id", side, b)
		}
		id := binary.BigEndian.Uint32(b[1:5])
		schema, err := stacktest.RegistrySchema(registry, id)
		if err != nil {
			t.Fatalf("%s schema id %d: %v", side, id, err)
		}
		if schema == "" {
			t.Fatalf("%s schema id %d: empty schema", side, id)
		}
	}
}
