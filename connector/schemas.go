package connector

import (
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/schemaregistry"
	"github.com/pgsink/pgsink/sink"
)

// useSchemaRegistry gives router the schema registry of encoding: avro,
// when the configuration names one.
func useSchemaRegistry(cfg *config.Config, router *sink.Router) error {
	if cfg.SchemaRegistry.URL == "" {
		return nil
	}
	client, err := schemaregistry.New(cfg.SchemaRegistry)
	if err != nil {
		return err
	}
	router.UseSchemas(client)
	return nil
}
