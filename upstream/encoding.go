package upstream

import (
	"fmt"
	"strings"

	"github.com/pgsink/pgsink/config"
)

// The converter classes a table's encoding is read from.
const (
	jsonConverter      = "org.apache.kafka.connect.json.JsonConverter"
	confluentConverter = "io.confluent.connect.avro.AvroConverter"
	apicurioConverter  = "io.apicurio.registry.utils.converter.AvroConverter"
)

// apicurioWireFormat are the settings Apicurio's AvroConverter needs to
// write what encoding: avro reads (the Confluent wire format with ids the
// registry's Confluent-compatible API serves), with the converter's own
// defaults (Apicurio Registry 2.x).
var apicurioWireFormat = []struct{ key, want, dflt, consequence string }{
	{"apicurio.registry.headers.enabled", "false", "true", "the schema id goes into record headers, not the body: every record lacks the magic byte and is a dead letter"},
	{"apicurio.registry.as-confluent", "true", "false", "the id is not written in the Confluent wire format's 4 bytes: every record is a dead letter"},
	{"apicurio.registry.use-id", "contentId", "globalId", "the ids written are not the ones the Confluent-compatible API serves: records are dead letters, or decoded with another schema"},
}

// converterClass is the class a connector sets for one side ("key",
// "value"), empty when it leaves the worker's converter.
func (c *checker) converterClass(side string) string {
	return strings.TrimSpace(c.feed.connector.Config[side+".converter"])
}

// encoding checks that the converters a connector sets write what the
// table's encoding reads: anything else makes every record a dead letter.
// As for schemas.enable, only a converter set on the connector is seen.
func (c *checker) encoding() {
	for _, side := range []string{"key", "value"} {
		key := side + ".converter"
		class := c.converterClass(side)
		avro := class == confluentConverter || class == apicurioConverter
		switch {
		case class == "":
			continue
		case c.t.Encoding == config.EncodingAvro && class == jsonConverter:
			c.add(Error, key, nil, "this table has encoding: avro but the connector writes JSON: every record is a dead letter",
				"set "+key+" to an Avro converter in the Confluent wire format ("+apicurioConverter+" or "+confluentConverter+"), or encoding: json on this table")
		case c.t.Encoding == config.EncodingJSON && avro:
			c.add(Error, key, nil, "this table has encoding: json but the connector writes Avro: every record is a dead letter",
				"set encoding: avro on this table (with schema_registry.url), or "+key+"="+jsonConverter+" on the connector")
		case c.t.Encoding != config.EncodingJSON && class == apicurioConverter:
			// auto reads Avro too, in the Confluent wire format only.
			for _, s := range apicurioWireFormat {
				setting := key + "." + s.key
				value, set := c.feed.connector.Config[setting]
				if set && strings.TrimSpace(value) == s.want {
					continue
				}
				c.add(Error, "", nil, s.consequence, fmt.Sprintf("set %s=%s on the connector", setting, s.want))
				f := &c.findings[len(c.findings)-1]
				if f.Setting = setting + "=" + strings.TrimSpace(value); !set {
					f.Setting = setting + "=" + s.dflt + " (the converter's default)"
				}
			}
		}
	}
}
