package upstream

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pgsink/pgsink/config"
)

// transactionMetadata checks, under apply.consistency: transaction, that
// the connector feeding the table marks its events with their transaction
// and writes the transaction topic the resolver reads. Without the
// metadata every event would be applied as a record of no transaction, so
// the guarantee would be gone without a sign. encoding is the file's, which
// the resolver reads the transaction topic in.
func (c *checker) transactionMetadata(a config.Apply, encoding config.Encoding) {
	if a.Consistency != config.ConsistencyTransaction {
		return
	}
	if v, _ := c.feed.connector.setting("provide.transaction.metadata"); !strings.EqualFold(v, "true") {
		c.add(Error, "provide.transaction.metadata", nil,
			"events carry no transaction block and no transaction topic is written, so apply.consistency: transaction cannot keep source transactions whole",
			"set provide.transaction.metadata=true on the connector")
		return
	}
	// The resolver reads the transaction topic in the file's encoding, and
	// the connector writes it with its value converter.
	switch class := c.converterClass("value"); {
	case (class == confluentConverter || class == apicurioConverter) && encoding == config.EncodingJSON:
		c.addAt("apply.transaction.topic", Error, "value.converter", nil,
			"the connector writes its transaction topic in Avro, and the resolver reads apply.transaction.topic in the file's encoding, json: it stops at the first marker",
			"set encoding: avro (or auto) at the top of the file, with schema_registry.url, or value.converter="+jsonConverter+" on the connector")
	case class == jsonConverter && encoding == config.EncodingAvro:
		c.addAt("apply.transaction.topic", Error, "value.converter", nil,
			"the connector writes its transaction topic in JSON, and the resolver reads apply.transaction.topic in the file's encoding, avro: it stops at the first marker (no magic byte)",
			"set encoding: json (or auto) at the top of the file, or an Avro converter in the Confluent wire format ("+apicurioConverter+" or "+confluentConverter+") on the connector")
	}
	suffix, _ := c.feed.connector.setting("topic.transaction")
	if want := c.feed.connector.Config["topic.prefix"] + "." + suffix; want != a.Transaction.Topic {
		c.addAt("apply.transaction.topic", Error, "topic.transaction", nil,
			"the connector writes its transaction metadata to "+want+", not to "+a.Transaction.Topic+", so the resolver would never see this table's transactions end",
			"set apply.transaction.topic: "+want)
	}
}

// transactionCoverage checks, under apply.consistency: transaction, that
// every table the connector writing apply.transaction.topic captures is
// routed by some table of cfg: a transaction's END counts the events of
// every captured table, so one pgsink does not consume would leave each
// transaction that writes it incomplete, and the resolver stops.
func transactionCoverage(cfg *config.Config, connectors []Connector) []Finding {
	if cfg.Apply.Consistency != config.ConsistencyTransaction {
		return nil
	}
	router := cfg.Router()
	var out []Finding
	for _, c := range connectors {
		prefix := c.Config["topic.prefix"]
		suffix, _ := c.setting("topic.transaction")
		if !c.isDebeziumPostgres() || prefix+"."+suffix != cfg.Apply.Transaction.Topic {
			continue
		}
		add := func(sev Severity, consequence, fix string) {
			out = append(out, Finding{Severity: sev, Path: "apply.transaction.topic", Connector: c.Name,
				Setting: "table.include.list=" + c.Config["table.include.list"], Consequence: consequence, Fix: fix})
		}
		routes := c.routes()
		if slices.ContainsFunc(routes, func(r route) bool { return r.outbox }) {
			add(Error, "the connector's Outbox Event Router drops each event's transaction block and the outbox table's updates and deletes, which END counts, so the transactions that write the outbox table never complete and the resolver stops",
				"leave the outbox table out of this connector and read its router's topics with a second pgsink under another group.id with apply.consistency: partition")
			continue
		}
		literal := literalTables(c.Config["table.include.list"])
		if len(literal) == 0 || len(literal) < len(splitList(c.Config["table.include.list"])) {
			add(Warning, "the include list is empty or has expressions, so the tables the connector captures cannot be listed: one no table routes would stop the resolver at the first transaction that writes it",
				"list the captured tables literally in table.include.list")
		}
		for _, source := range literal {
			if !c.captures(source) {
				continue
			}
			topic, followed := prefix+"."+source, true
			for _, r := range routes {
				topic, followed = r.apply(topic)
			}
			if _, err := router.Resolve(topic); followed && errors.Is(err, config.ErrNoTable) {
				add(Error, fmt.Sprintf("the connector captures %s (topic %s), which no table routes: every transaction that writes it waits for events pgsink never stages, and the resolver stops", source, topic),
					fmt.Sprintf("add a table for %s, or remove %s from the connector's table.include.list", topic, source))
			}
		}
	}
	return out
}
