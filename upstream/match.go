package upstream

import (
	"strings"

	"github.com/pgsink/pgsink/config"
)

// feed is one connector feeding one pgsink table.
type feed struct {
	connector Connector
	// source is the captured table ("schema.table") whose topic the pgsink
	// table claims; empty for the topics of an Event Router.
	source string
	// topic is the source table's topic, as the connector names and
	// routes it; empty for an Event Router's.
	topic  string
	outbox bool
}

// feedsOf lists what connector c feeds into table t: each captured table
// whose topic the router resolves to t. Topics are the connector's
// "<topic.prefix>.<schema>.<table>", passed through its routing transforms;
// an Event Router's topics are recognised by its route.topic.replacement.
func feedsOf(c Connector, t *config.Table, router *config.Router) []feed {
	prefix := c.Config["topic.prefix"]
	if !c.isDebeziumPostgres() || prefix == "" {
		return nil
	}
	routes := c.routes()
	var out []feed
	seen := map[string]bool{}
	add := func(f feed) {
		if !seen[f.source] {
			seen[f.source] = true
			out = append(out, f)
		}
	}
	for _, r := range routes {
		if !r.outbox {
			continue
		}
		// Every captured record takes the router's topic, which names no
		// source table; a topic_pattern table cannot be matched to it.
		re := r.outboxTopics()
		for _, topic := range namedTopics(t) {
			if re.MatchString(topic) {
				add(feed{connector: c, outbox: true})
			}
		}
		return out
	}
	claims := func(topic string) bool {
		got, err := router.Resolve(topic)
		return err == nil && got.Path == t.Path
	}
	for _, source := range literalTables(c.Config["table.include.list"]) {
		if !c.captures(source) {
			continue
		}
		topic, followed := prefix+"."+source, true
		for _, r := range routes {
			topic, followed = r.apply(topic)
		}
		if followed && claims(topic) {
			add(feed{connector: c, source: source, topic: topic})
		}
	}
	if len(routes) == 0 {
		// Without routing a topic names its table, whatever the include
		// list's expressions are.
		for _, topic := range namedTopics(t) {
			source, ok := strings.CutPrefix(topic, prefix+".")
			if ok && strings.Contains(source, ".") && c.captures(source) {
				add(feed{connector: c, source: source, topic: topic})
			}
		}
	}
	return out
}

func namedTopics(t *config.Table) []string {
	if t.Topic != "" {
		return []string{t.Topic}
	}
	return t.Topics
}

// literalTables are the entries of an include list that name one table
// ("public.orders", "public\.orders"), as opposed to an expression.
func literalTables(list string) []string {
	var out []string
	for _, expr := range splitList(list) {
		name := strings.ReplaceAll(expr, `\.`, ".")
		if !strings.ContainsAny(name, `[](){}*+?|^$\`) && strings.Contains(name, ".") {
			out = append(out, name)
		}
	}
	return out
}
