package upstream

import (
	"regexp"
	"strings"
)

// debeziumDefaults are the Debezium PostgreSQL connector's defaults of the
// settings checked here (Debezium 3.x): Connect's REST API returns only the
// settings a connector was given.
var debeziumDefaults = map[string]string{
	"decimal.handling.mode":        "precise",
	"interval.handling.mode":       "numeric",
	"time.precision.mode":          "adaptive",
	"skipped.operations":           "t",
	"snapshot.mode":                "initial",
	"provide.transaction.metadata": "false",
	"topic.transaction":            "transaction",
	"extended.headers.enabled":     "true",
}

// postgresConnectorClass is the Debezium PostgreSQL connector; other
// connectors are not checked.
const postgresConnectorClass = "io.debezium.connector.postgresql.PostgresConnector"

// isDebeziumPostgres also accepts the aliases Connect resolves a class
// from: its simple name, and that name without "Connector".
func (c Connector) isDebeziumPostgres() bool {
	switch c.Config["connector.class"] {
	case postgresConnectorClass, "PostgresConnector", "Postgres":
		return true
	}
	return false
}

// setting returns a setting's value, Debezium's default when it is not set,
// and whether it was the default.
func (c Connector) setting(key string) (value string, isDefault bool) {
	if v, ok := c.Config[key]; ok {
		return strings.TrimSpace(v), false
	}
	return debeziumDefaults[key], true
}

// skipped is the set of operations skipped.operations names ("c", "u", "d",
// "t"); "none" is the empty set.
func (c Connector) skipped() map[string]bool {
	v, _ := c.setting("skipped.operations")
	out := map[string]bool{}
	for _, op := range splitList(v) {
		if op != "none" {
			out[op] = true
		}
	}
	return out
}

// splitList splits a comma-separated Debezium list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// filter is one of Debezium's include or exclude lists: regular
// expressions that must match a whole name, case-insensitively, as
// Debezium matches them. An expression Go cannot compile (Java-only syntax)
// is kept as matching everything, so that the check errs on the side of
// looking at a table rather than passing it over.
type filter []*regexp.Regexp

func newFilter(list string) filter {
	var f filter
	for _, expr := range splitList(list) {
		re, err := regexp.Compile(`(?i)^(?:` + expr + `)$`)
		if err != nil {
			re = regexp.MustCompile(`.*`)
		}
		f = append(f, re)
	}
	return f
}

func (f filter) set() bool { return len(f) > 0 }

func (f filter) match(name string) bool {
	for _, re := range f {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// selects applies an include and an exclude list the way Debezium does: a
// set include list decides alone, else the exclude list removes.
func selects(include, exclude filter, name string) bool {
	if include.set() {
		return include.match(name)
	}
	return !exclude.match(name)
}

// captures reports whether the connector captures source table
// "schema.table" by its schema and table include and exclude lists.
func (c Connector) captures(table string) bool {
	schema, _, _ := strings.Cut(table, ".")
	return selects(newFilter(c.Config["schema.include.list"]), newFilter(c.Config["schema.exclude.list"]), schema) &&
		selects(newFilter(c.Config["table.include.list"]), newFilter(c.Config["table.exclude.list"]), table)
}

// sendsColumn reports whether the connector sends column "schema.table.column"
// by its column include and exclude lists.
func (c Connector) sendsColumn(column string) bool {
	return selects(newFilter(c.Config["column.include.list"]), newFilter(c.Config["column.exclude.list"]), column)
}

// snapshots reports whether the connector's snapshot.mode reads the
// tables' rows: every mode but no_data (and never, its old name) may, and
// configuration_based when it is told to snapshot data.
func (c Connector) snapshots() bool {
	mode, _ := c.setting("snapshot.mode")
	switch strings.ToLower(mode) {
	case "no_data", "never":
		return false
	case "configuration_based":
		return strings.EqualFold(strings.TrimSpace(c.Config["snapshot.mode.configuration.based.snapshot.data"]), "true")
	}
	return true
}
