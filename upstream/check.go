package upstream

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/sink/catalog"
)

// Check reports, for every table of cfg, what the connectors feeding it
// lose, and (Info) the settings that only cost. targets holds the tables'
// targets as Read from the catalog: a fixed target by its entry's key path
// ("tables[0]"), a target a template derives from a topic by its name
// (DerivedKey). A table absent there or not existing (schema.create, a
// catalog that could not be read, a target decided per record) is checked
// without its columns.
func Check(cfg *config.Config, connectors []Connector, targets map[string]*catalog.Table) []Finding {
	router := cfg.Router()
	var out []Finding
	fed := map[string]string{} // connector name -> the first table it feeds
	for i := range cfg.Tables {
		t := &cfg.Tables[i]
		var feeds []feed
		for _, c := range connectors {
			feeds = append(feeds, feedsOf(c, t, router)...)
		}
		if len(feeds) == 0 {
			out = append(out, Finding{Severity: Warning, Path: t.Path,
				Consequence: "no Debezium PostgreSQL connector at debezium.connect_url produces this table's topics " +
					"(matched by topic.prefix, table.include.list and topic routing), so no connector setting is checked for it",
				Fix: "check the table's topics, or point debezium.connect_url at the Connect cluster that produces them"})
			continue
		}
		target := targets[t.Path]
		if target != nil && !target.Exists {
			target = nil
		}
		for _, f := range feeds {
			if _, ok := fed[f.connector.Name]; !ok {
				fed[f.connector.Name] = t.Path
			}
			c := &checker{t: t, feed: f}
			c.operations()
			c.encoding()
			c.transactionMetadata(cfg.Apply, cfg.Encoding)
			if !f.outbox {
				c.partialSnapshot()
				c.converters()
				if t.Target.Template != nil {
					c.derived = derivedTarget(router, f.topic, targets)
					if c.derived != nil {
						c.columns(c.derived)
					}
				} else if target != nil {
					c.columns(target)
				}
			}
			out = append(out, c.findings...)
		}
	}
	out = append(out, prefixClashes(cfg, connectors)...)
	out = append(out, transactionCoverage(cfg, connectors)...)
	return append(out, contextHeaders(cfg, connectors, fed)...)
}

// DerivedKey is the key of targets (Check) for a target a template
// derives: its name, which no key path ("tables[0]") can be.
func DerivedKey(name config.TableName) string { return "derived " + name.String() }

// derivedTarget is the target a templated entry derives for topic, as Read
// into targets; nil when the template decides per record, or the target is
// not there or does not exist.
func derivedTarget(router *config.Router, topic string, targets map[string]*catalog.Table) *catalog.Table {
	if topic == "" {
		return nil
	}
	d, err := router.Resolve(topic)
	if err != nil || d.Target.TableName.IsZero() {
		return nil
	}
	if t := targets[DerivedKey(d.Target.TableName)]; t != nil && t.Exists {
		return t
	}
	return nil
}

// checker collects the findings of one connector feeding one table.
type checker struct {
	t    *config.Table
	feed feed
	// derived is the target a templated entry derives for the feed's
	// topic, named in each column finding: one entry has several.
	derived  *catalog.Table
	findings []Finding
}

func (c *checker) add(sev Severity, key string, col *catalog.Column, consequence, fix string) {
	c.addAt(c.t.Path, sev, key, col, consequence, fix)
}

// addAt adds a finding at a key path of the table's own ("tables[0].snapshot.reconcile").
func (c *checker) addAt(path string, sev Severity, key string, col *catalog.Column, consequence, fix string) {
	f := Finding{Severity: sev, Path: path, Connector: c.feed.connector.Name, Consequence: consequence, Fix: fix}
	if key != "" {
		value, isDefault := c.feed.connector.setting(key)
		f.Setting = key + "=" + value
		if isDefault {
			f.Setting += " (Debezium's default)"
		}
	}
	if col != nil {
		if c.derived != nil {
			f.Target = c.derived.Schema + "." + c.derived.Name
		}
		f.Column, f.ColumnType = col.Name, col.Type
		if col.Dims > 1 {
			f.ColumnType = fmt.Sprintf("%s, declared with %d dimensions", col.Type, col.Dims)
		}
	}
	c.findings = append(c.findings, f)
}

// operations checks skipped.operations against what the table applies.
func (c *checker) operations() {
	skipped := c.feed.connector.skipped()
	const key = "skipped.operations"
	fix := func(op string) string {
		return fmt.Sprintf("remove %q from skipped.operations on the connector (skipped.operations=none skips nothing)", op)
	}
	if c.feed.outbox {
		if skipped["c"] {
			c.add(Error, key, nil, "outbox events are inserts, and the connector drops every one", fix("c"))
		}
		return
	}
	if skipped["c"] {
		c.add(Error, key, nil, "rows inserted at the source never reach the target", fix("c"))
	}
	if skipped["u"] {
		c.add(Error, key, nil, "updates never reach the target: its rows keep their old values", fix("u"))
	}
	if skipped["d"] && c.t.Deletes != config.DeletesIgnore {
		c.add(Error, key, nil, fmt.Sprintf("deletes never reach the target (this table has deletes: %s): rows deleted at the source stay", c.t.Deletes),
			fix("d")+", or set deletes: ignore on this table to keep deleted rows")
	}
	if skipped["t"] && c.t.Truncate == config.TruncateApply {
		c.add(Error, key, nil, "a TRUNCATE at the source never reaches pgsink (this table has truncate: apply): the target keeps every row",
			"set skipped.operations=none on the connector (Debezium skips truncates by default), or truncate: ignore on this table")
	}
}

// converters checks that the event schemas schema.create and schema.evolve
// need are sent. Only a converter setting made on the connector is seen:
// the worker's defaults are not in Connect's REST API. schemas.enable is
// JsonConverter's: an Avro converter always sends the schema.
func (c *checker) converters() {
	for _, side := range []string{"key", "value"} {
		key := side + ".converter.schemas.enable"
		if class := c.converterClass(side); class != "" && class != jsonConverter {
			continue
		}
		if !strings.EqualFold(strings.TrimSpace(c.feed.connector.Config[key]), "false") {
			continue
		}
		switch {
		case c.t.Schema.Create:
			c.add(Error, key, nil, "records carry no schema, so pgsink cannot create the missing target (schema.create) from them: "+
				"nothing of this table is applied until the table exists",
				"set "+key+"=true on the connector, or create the target table yourself")
		case c.t.Schema.Evolve != config.EvolveNone:
			c.add(Warning, key, nil, fmt.Sprintf("records carry no schema, so schema.evolve: %s never sees a source column change", c.t.Schema.Evolve),
				"set "+key+"=true on the connector")
		}
	}
}

// columns checks every target column the table writes against the
// settings that change its values.
func (c *checker) columns(target *catalog.Table) {
	fieldOf := map[string]string{}
	for field, column := range c.t.Columns.Rename {
		fieldOf[column] = field
	}
	own := map[string]bool{c.t.Version.CommitColumn: true, c.t.Version.LSNColumn: true}
	if c.t.Deletes == config.DeletesSoft {
		own[c.t.SoftDelete.Column] = true
	}
	for i := range target.Columns {
		col := &target.Columns[i]
		field, renamed := fieldOf[col.Name]
		if !renamed {
			field = col.Name
		}
		if col.Generated || own[col.Name] {
			continue
		}
		if _, written := c.t.Columns.Column(field); !written {
			continue
		}
		if c.feed.source != "" && !c.sent(col, c.feed.source+"."+field) {
			continue
		}
		c.values(col)
	}
}

// sent checks the connector's column lists and masks for one column,
// qualified as "schema.table.column", and reports whether its values are
// sent at all.
func (c *checker) sent(col *catalog.Column, qualified string) bool {
	conn := c.feed.connector
	if !conn.sendsColumn(qualified) {
		key := "column.exclude.list"
		if _, ok := conn.Config["column.include.list"]; ok {
			key = "column.include.list"
		}
		fix := "send the column (" + key + " on the connector)"
		if col.NotNull && col.Default == "" && col.Identity == "" {
			c.add(Error, key, col, "the connector does not send this column, which is NOT NULL without a default: every new row is refused (dead letters)",
				fix+", or give the target column a default")
		} else {
			c.add(Warning, key, col, "the connector does not send this column: new rows get its default, updated rows keep their value",
				fix+", or drop the column from the target if it is meant to stay empty")
		}
		return false
	}
	keys := make([]string, 0, len(conn.Config))
	for key := range conn.Config {
		if maskKey.MatchString(key) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		if !newFilter(conn.Config[key]).match(qualified) {
			continue
		}
		m := maskKey.FindStringSubmatch(key)
		consequence := "every value arrives replaced by its hash"
		switch {
		case m[1] != "":
			consequence = "strings longer than " + m[1] + " characters arrive cut to " + m[1]
		case m[2] != "":
			consequence = "every value arrives replaced by " + m[2] + " asterisks"
		}
		c.add(Error, key, col, consequence, "remove the column from "+key+" on the connector")
	}
	return true
}

// maskKey matches the connector settings that alter a column's values:
// column.truncate.to.N.chars, column.mask.with.N.chars and
// column.mask.hash[.v2].ALGORITHM.with.salt.SALT.
var maskKey = regexp.MustCompile(`^column\.(?:truncate\.to\.(\d+)\.chars|mask\.with\.(\d+)\.chars|mask\.hash\..+\.with\.salt\..+)$`)

var timeType = regexp.MustCompile(`^(?:time|timestamp)(?:\((\d)\))? without time zone$`)

// fractionalDigits is the precision of a time or timestamp without time
// zone (6 when the type names none), and whether base is one.
func fractionalDigits(base string) (int, bool) {
	m := timeType.FindStringSubmatch(base)
	if m == nil {
		return 0, false
	}
	if m[1] == "" {
		return 6, true
	}
	precision, _ := strconv.Atoi(m[1])
	return precision, true
}

// values checks what Debezium does to the values of col's type: not
// sending them, and the settings and behaviours that change them.
func (c *checker) values(col *catalog.Column) {
	if !c.carried(col) {
		return
	}
	base, _ := strings.CutSuffix(col.Type, "[]")
	conn := c.feed.connector
	decimal, _ := conn.setting("decimal.handling.mode")
	switch {
	case base == "numeric" || strings.HasPrefix(base, "numeric("):
		switch decimal {
		case "precise":
			// Every numeric column accepts NaN, whatever its precision and
			// scale: the type, not the data, decides.
			c.add(Error, "decimal.handling.mode", col, "NaN, which every numeric column accepts, arrives as null and is written as NULL",
				"set decimal.handling.mode=string on the connector")
		case "double":
			c.add(Error, "decimal.handling.mode", col, "values arrive as double precision: digits past the 15th are rounded away",
				"set decimal.handling.mode=string on the connector")
		}
	case base == "money" && decimal == "double":
		c.add(Error, "decimal.handling.mode", col, "values arrive as double precision: amounts past 15 digits lose their cents",
			"set decimal.handling.mode=string on the connector")
	case strings.HasPrefix(base, "interval"):
		if mode, _ := conn.setting("interval.handling.mode"); mode == "numeric" {
			c.add(Error, "interval.handling.mode", col, "values arrive as microseconds, with months and days folded into them "+
				"('1 year 2 mons 3 days 04:05:06.789' is written as 10303:05:06.789)", "set interval.handling.mode=string on the connector")
		}
	default:
		if precision, ok := fractionalDigits(base); ok {
			if mode, _ := conn.setting("time.precision.mode"); mode == "connect" && precision > 3 {
				c.add(Error, "time.precision.mode", col, "values arrive in milliseconds: their microseconds are dropped",
					"set time.precision.mode=adaptive (Debezium's default) on the connector")
			}
		}
	}
	if col.Dims > 1 {
		c.add(Error, "", col, "Debezium does not carry multi-dimensional arrays: every such value arrives as an array of nulls",
			"keep the column one-dimensional at the source, or carry the values in a jsonb or text column")
	}
	c.typeLosses(col)
}
