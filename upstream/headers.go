package upstream

import (
	"strings"

	"github.com/pgsink/pgsink/config"
)

// contextHeaderPrefix names the headers Debezium adds to every record
// while extended.headers.enabled is on (its default since Debezium 2.5):
// the connector's logical name, task id, connector name and run id.
const contextHeaderPrefix = "__debezium.context."

// contextHeaders reports, once per connector that feeds a table of cfg
// (fed, in the order of connectors), that its records carry Debezium's
// context headers. pgsink reads none of them unless a target template
// names one, yet the Kafka client copies every header of every record into
// Go: bytes and CPU per record for nothing. It is a cost, not a loss.
func contextHeaders(cfg *config.Config, connectors []Connector, fed map[string]string) []Finding {
	if templatesReadContextHeaders(cfg) {
		return nil
	}
	var out []Finding
	for _, c := range connectors {
		path, ok := fed[c.Name]
		if !ok {
			continue
		}
		const key = "extended.headers.enabled"
		value, isDefault := c.setting(key)
		if !strings.EqualFold(value, "true") {
			continue
		}
		setting := key + "=" + value
		if isDefault {
			setting += " (Debezium's default)"
		}
		out = append(out, Finding{Severity: Info, Path: path, Connector: c.Name, Setting: setting,
			Consequence: "every record carries four " + contextHeaderPrefix + "* headers (about 180 bytes), which pgsink does not read " +
				"but copies out of the Kafka client for each record, a cost in CPU and memory per record; nothing is lost",
			Fix: "set " + key + "=false on the connector"})
	}
	return out
}

// templatesReadContextHeaders reports whether a table's target template
// reads a context header (${header.__debezium.context.…}), which the
// setting must then keep.
func templatesReadContextHeaders(cfg *config.Config) bool {
	for _, t := range cfg.Tables {
		if t.Target.Template == nil {
			continue
		}
		for _, h := range t.Target.Template.Headers() {
			if strings.HasPrefix(h, contextHeaderPrefix) {
				return true
			}
		}
	}
	return false
}
