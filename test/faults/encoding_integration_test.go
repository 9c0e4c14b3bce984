//go:build integration

package faults

import (
	"fmt"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/test/stacktest"
)

// A scenario runs on JSON unless its options say Avro (issue 23): Debezium
// on Apicurio's Avro converter, pgsink on encoding: avro through the stack's
// schema registry. The long suite runs scenarios 1, 7 and 9 on Avro too.

// encodingSuffix names the encoding in a scenario's name, after its number
// and phase, as phase.suffix does: "1a", "7a", "9a".
func encodingSuffix(e config.Encoding) string {
	if e == config.EncodingAvro {
		return "a"
	}
	return ""
}

// useEncoding switches the connector's overrides to the encoding's
// converter and returns what pgsink's configuration needs for it: nothing
// for JSON.
func (s *scenario) useEncoding(e config.Encoding, overrides map[string]string) string {
	s.t.Helper()
	if e != config.EncodingAvro {
		return ""
	}
	registry, err := s.st.Env.Registry()
	if err != nil {
		s.t.Fatal(err)
	}
	stacktest.UseAvro(overrides, registry)
	return fmt.Sprintf("encoding: avro\nschema_registry:\n  url: %s\n", stacktest.ConfluentAPI(registry))
}
