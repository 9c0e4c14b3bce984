package connector

import (
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/schemaregistry"
	"github.com/pgsink/pgsink/sink"
)

// useSchemaRegistry gives router the schema registry of encoding: avro,
// when the configuration names one, and returns it (nil when none) for the
// resolver's markers: one client, so one fetch per schema id per process.
func useSchemaRegistry(cfg *config.Config, router *sink.Router) (debezium.SchemaSource, error) {
	if cfg.SchemaRegistry.URL == "" {
		return nil, nil
	}
	client, err := schemaregistry.New(cfg.SchemaRegistry)
	if err != nil {
		return nil, err
	}
	router.UseSchemas(client)
	return client, nil
}
