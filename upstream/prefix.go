package upstream

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgsink/pgsink/config"
)

// prefixClashes reports Debezium PostgreSQL connectors of one Connect
// cluster that share a topic.prefix while one of them feeds a table of
// cfg. Debezium requires the prefix unique across connectors: it names
// their topics, so the changes of both land in the same topics (the
// routing of one is the other's too), and their metrics (JMX names), so
// one connector's lag and errors are not seen. A warning: two connectors
// of different tables may share it and work, but nothing then tells the
// tables' topics apart from the connector that wrote them.
func prefixClashes(cfg *config.Config, connectors []Connector) []Finding {
	byPrefix := map[string][]Connector{}
	for _, c := range connectors {
		if c.isDebeziumPostgres() {
			p := c.Config["topic.prefix"]
			byPrefix[p] = append(byPrefix[p], c)
		}
	}
	router := cfg.Router()
	var out []Finding
	for prefix, cs := range byPrefix {
		if len(cs) < 2 {
			continue
		}
		path := ""
		for _, c := range cs {
			for i := range cfg.Tables {
				if path == "" && len(feedsOf(c, &cfg.Tables[i], router)) > 0 {
					path = cfg.Tables[i].Path
				}
			}
		}
		if path == "" {
			continue // none feeds pgsink: not this configuration's concern
		}
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = fmt.Sprintf("%q", c.Name)
		}
		sort.Strings(names)
		out = append(out, Finding{Severity: Warning, Path: path, Connector: strings.Trim(names[0], `"`),
			Setting: "topic.prefix=" + prefix,
			Consequence: fmt.Sprintf("connectors %s share topic.prefix %q, which Debezium requires unique across connectors: "+
				"their changes mix in the same topics and their metrics share one name, so one connector's lag and errors are not seen", strings.Join(names, ", "), prefix),
			Fix: "give each connector its own topic.prefix (and route each prefix's topics in pgsink.yaml)"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Setting < out[j].Setting })
	return out
}
