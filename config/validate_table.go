package config

import (
	"strconv"
	"strings"
)

// tableOnlyKeys are the keys that mean nothing for format: outbox, whose
// columns come from the payload mapping and whose events are never deleted.
var tableOnlyKeys = []string{"columns", "deletes", "soft_delete", "truncate", "snapshot"}

// outboxOnlyKeys are the keys that mean nothing for format: table.
var outboxOnlyKeys = []string{"event_types", "payload"}

func (v *validator) table(t Table) {
	p := t.Path
	v.topicSource(t)
	if t.Target.IsZero() && !v.src.present(p+".target") {
		v.fail(p+".target", "is required (schema.table)")
	}
	v.names(p+".key", t.Key)
	v.columns(t)
	if t.Deletes == DeletesSoft {
		v.identifier(p+".soft_delete.column", t.SoftDelete.Column)
	} else if v.src.present(p + ".soft_delete") {
		v.fail(p+".soft_delete", "applies only with deletes: soft (deletes is %s)", t.Deletes)
	}
	v.version(t)
	switch t.Format {
	case FormatOutbox:
		v.outbox(t)
	case FormatTable:
		for _, key := range outboxOnlyKeys {
			if v.src.present(p + "." + key) {
				v.fail(p+"."+key, "applies only to format: outbox")
			}
		}
	}
}

// topicSource checks that exactly one of topic, topics and topic_pattern is given.
func (v *validator) topicSource(t Table) {
	p := t.Path
	var given []string
	for _, key := range []string{"topic", "topics", "topic_pattern"} {
		if v.src.present(p + "." + key) {
			given = append(given, key)
		}
	}
	switch {
	case len(given) == 0:
		v.fail(p, "one of topic, topics or topic_pattern is required")
	case len(given) > 1:
		v.fail(p+"."+given[1], "only one of topic, topics and topic_pattern may be set; %s is set too", given[0])
	}
	if v.src.present(p + ".topic") {
		v.topicName(p+".topic", t.Topic)
	}
	if v.src.present(p+".topics") && len(t.Topics) == 0 {
		v.fail(p+".topics", "must list at least one topic")
	}
	seen := map[string]bool{}
	for i, topic := range t.Topics {
		v.topicName(indexPath(p+".topics", i), topic)
		if seen[topic] {
			v.fail(indexPath(p+".topics", i), "%q is listed twice", topic)
		}
		seen[topic] = true
	}
}

func (v *validator) columns(t Table) {
	p := t.Path + ".columns"
	c := t.Columns
	v.names(p+".include", c.Include)
	v.names(p+".exclude", c.Exclude)
	if len(c.Include) > 0 && len(c.Exclude) > 0 {
		v.fail(p+".exclude", "include and exclude cannot both be set: include lists every field written")
	}
	targets := map[string]string{} // target column → the source field mapped to it
	for _, from := range sortedKeys(c.Rename) {
		to := c.Rename[from]
		path := p + ".rename." + from
		if !v.identifier(path, to) {
			continue
		}
		switch {
		case contains(c.Exclude, from):
			v.fail(path, "renames %q, which is excluded", from)
		case len(c.Include) > 0 && !contains(c.Include, from):
			v.fail(path, "renames %q, which is not in include", from)
		case targets[to] != "":
			v.fail(path, "renames %q to %q, which %q is already renamed to", from, to, targets[to])
		}
		targets[to] = from
	}
	// A field kept under its own name collides with a field renamed to it.
	for _, field := range c.Include {
		if _, renamed := c.Rename[field]; !renamed && targets[field] != "" {
			v.fail(p+".rename."+targets[field], "renames %q to %q, which is also an included field's name", targets[field], field)
		}
	}
	for i, key := range t.Key {
		switch {
		case contains(c.Exclude, key) && c.Rename[key] == "":
			v.fail(indexPath(t.Path+".key", i), "names column %q, which columns.exclude drops", key)
		case len(c.Include) > 0 && !writtenByInclude(c, key):
			v.fail(indexPath(t.Path+".key", i), "names column %q, which no field in columns.include is written to", key)
		}
	}
}

func writtenByInclude(c Columns, column string) bool {
	for _, field := range c.Include {
		if to, ok := c.Column(field); ok && to == column {
			return true
		}
	}
	return false
}

func (v *validator) version(t Table) {
	p := t.Path + ".version"
	if !t.Version.Guard {
		// Outbox rows are guarded by the event-id ledger, not by versions.
		if t.Format == FormatTable {
			v.fail(p+".guard", "false is not supported: the guard is what makes replays safe (remove the key; every table is version-guarded)")
		}
		return
	}
	okCommit := v.identifier(p+".commit_column", t.Version.CommitColumn)
	okLSN := v.identifier(p+".lsn_column", t.Version.LSNColumn)
	if okCommit && okLSN && t.Version.CommitColumn == t.Version.LSNColumn {
		v.fail(p+".lsn_column", "must differ from commit_column (both are %q)", t.Version.LSNColumn)
	}
	for _, col := range []string{t.Version.CommitColumn, t.Version.LSNColumn} {
		if t.Deletes == DeletesSoft && col == t.SoftDelete.Column {
			v.fail(t.Path+".soft_delete.column", "%q is also a version column", col)
		}
		if contains(t.Key, col) {
			v.fail(t.Path+".key", "%q is also a version column", col)
		}
	}
}

func (v *validator) outbox(t Table) {
	p := t.Path
	for _, key := range tableOnlyKeys {
		if v.src.present(p + "." + key) {
			v.fail(p+"."+key, "applies only to format: table (outbox columns come from payload)")
		}
	}
	if t.Schema.Create {
		v.fail(p+".schema.create", "applies only to format: table: an outbox payload carries no column types")
	}
	if len(t.Key) == 0 {
		v.fail(p+".key", "is required for format: outbox (the target columns that identify an event's row)")
	}
	v.names(p+".event_types", t.EventTypes)
	for _, col := range sortedKeys(t.Payload) {
		v.identifier(p+".payload."+col, col)
		if t.Version.Guard && (col == t.Version.CommitColumn || col == t.Version.LSNColumn) {
			v.fail(p+".payload."+col, "maps a payload value to the version column %q", col)
		}
	}
	if len(t.Payload) == 0 {
		return
	}
	for i, key := range t.Key {
		if _, ok := t.Payload[key]; !ok {
			v.fail(indexPath(p+".key", i), "names column %q, which payload does not map", key)
		}
	}
}

// topicClaims refuses a topic named by two tables, and two identical
// patterns. A pattern that also matches another table's named topic is
// allowed: a named topic always wins (see Resolve).
func (v *validator) topicClaims(tables []Table) {
	claimed := map[string]string{} // topic or pattern → path of its first claim
	claim := func(key, path, what string) {
		if first, ok := claimed[key]; ok {
			v.fail(path, "%s is already claimed by %s (line %d)", what, tableOf(first), v.src.position(first).Line)
			return
		}
		claimed[key] = path
	}
	for _, t := range tables {
		if t.Topic != "" {
			claim("topic:"+t.Topic, t.Path+".topic", "topic "+strconv.Quote(t.Topic))
		}
		inThisTable := map[string]bool{} // repeats within a list are reported by topicSource
		for i, topic := range t.Topics {
			if !inThisTable[topic] {
				claim("topic:"+topic, indexPath(t.Path+".topics", i), "topic "+strconv.Quote(topic))
			}
			inThisTable[topic] = true
		}
		if !t.TopicPattern.IsZero() {
			claim("pattern:"+t.TopicPattern.Source, t.Path+".topic_pattern", "pattern "+strconv.Quote(t.TopicPattern.Source))
		}
	}
}

func tableOf(path string) string {
	if i := strings.IndexByte(path, ']'); i >= 0 {
		return path[:i+1]
	}
	return path
}
