//go:build integration

package schemaregistry_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/schemaregistry"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/test/stacktest"
)

// TestIntegrationClient reads schemas from the stack's Apicurio Registry
// through its Confluent-compatible API: an id a connector registered is
// served once and then from the cache, an id it does not have is the
// record's fault, and a registry that does not answer is an outage.
func TestIntegrationClient(t *testing.T) {
	st := stacktest.New(t)
	registry, err := st.Env.Registry()
	if err != nil {
		t.Fatal(err)
	}
	st.Exec(`CREATE TABLE registry_probe (id int PRIMARY KEY)`)
	st.Exec(`INSERT INTO registry_probe VALUES (1)`)
	st.RegisterDebezium("registry", stacktest.AvroConverter(registry))
	records := st.ReadUntil(90*time.Second, func(rs []recording.Record) bool { return len(rs) > 0 })
	id := uint32(records[0].Value[1])<<24 | uint32(records[0].Value[2])<<16 | uint32(records[0].Value[3])<<8 | uint32(records[0].Value[4])

	c, err := schemaregistry.New(config.SchemaRegistry{URL: registry + "/apis/ccompat/v7"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		text, err := c.Schema(id)
		if err != nil || text == "" {
			t.Fatalf("Schema(%d) = %q, %v", id, text, err)
		}
	}
	if n := c.Fetched(); n != 1 {
		t.Errorf("fetched %d times for one id, want 1", n)
	}
	if _, err := c.Schema(1 << 30); !errors.Is(err, debezium.ErrUnknownSchemaID) {
		t.Errorf("unknown id: got %v, want ErrUnknownSchemaID", err)
	}

	// A port nothing listens on: the registry is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	d, err := schemaregistry.New(config.SchemaRegistry{URL: down})
	if err != nil {
		t.Fatal(err)
	}
	var su *debezium.SchemaUnavailableError
	if _, err := d.Schema(id); !errors.As(err, &su) || su.ID != id {
		t.Errorf("registry down: got %v, want a SchemaUnavailableError for id %d", err, id)
	}
}
