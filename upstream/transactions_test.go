package upstream

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestTransactionMetadata checks that apply.consistency: transaction needs
// the connector's transaction metadata, on the recorded connector with the
// lossless settings (whose only other finding is the multi-dimensional array).
func TestTransactionMetadata(t *testing.T) {
	const txConfig = `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
apply: { consistency: transaction, transaction: { topic: shop.transaction } }
tables:
  - topic: shop.public.prices
    target: public.prices
`
	cfg := parseConfig(t, txConfig)
	base := connectors(t, "lossless")[0]
	with := func(settings map[string]string) []Connector {
		c := Connector{Name: base.Name, Config: maps.Clone(base.Config)}
		maps.Copy(c.Config, settings)
		return []Connector{c}
	}
	txFindings := func(cs []Connector) []string {
		var out []string
		for _, m := range messages(Check(cfg, cs, nil)) {
			if strings.Contains(m, "transaction") {
				out = append(out, m)
			}
		}
		return out
	}
	tests := []struct {
		name     string
		settings map[string]string
		want     []string
	}{
		{name: "no metadata (Debezium's default)", want: []string{
			`tables[0]: error: connector "lossless" provide.transaction.metadata=false (Debezium's default): events carry no transaction block and no transaction topic is written, ` +
				`so apply.consistency: transaction cannot keep source transactions whole; fix: set provide.transaction.metadata=true on the connector`,
		}},
		{name: "metadata on", settings: map[string]string{"provide.transaction.metadata": "true"}},
		{name: "another transaction topic", settings: map[string]string{"provide.transaction.metadata": "true", "topic.transaction": "txs"}, want: []string{
			`apply.transaction.topic: error: connector "lossless" topic.transaction=txs: the connector writes its transaction metadata to shop.txs, not to shop.transaction, ` +
				`so the resolver would never see this table's transactions end; fix: set apply.transaction.topic: shop.txs`,
		}},
		{name: "transaction topic in Avro", settings: map[string]string{"provide.transaction.metadata": "true", "value.converter": confluentConverter}, want: []string{
			`apply.transaction.topic: error: connector "lossless" value.converter=` + confluentConverter + `: the connector writes its transaction topic in Avro, and the resolver reads apply.transaction.topic in the file's encoding, json: it stops at the first marker; ` +
				`fix: set encoding: avro (or auto) at the top of the file, with schema_registry.url, or value.converter=` + jsonConverter + ` on the connector`,
		}},
		{name: "a captured table no table routes", settings: map[string]string{"provide.transaction.metadata": "true", "table.include.list": "public.prices,public.orders"}, want: []string{
			`apply.transaction.topic: error: connector "lossless" table.include.list=public.prices,public.orders: the connector captures public.orders (topic shop.public.orders), which no table routes: ` +
				`every transaction that writes it waits for events pgsink never stages, and the resolver stops; fix: add a table for shop.public.orders, or remove public.orders from the connector's table.include.list`,
		}},
		{name: "an include list of expressions", settings: map[string]string{"provide.transaction.metadata": "true", "table.include.list": "public.pri.*"}, want: []string{
			`apply.transaction.topic: warning: connector "lossless" table.include.list=public.pri.*: the include list is empty or has expressions, so the tables the connector captures cannot be listed: ` +
				`one no table routes would stop the resolver at the first transaction that writes it; fix: list the captured tables literally in table.include.list`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := txFindings(with(tc.settings)); !slices.Equal(got, tc.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestTransactionTopicEncoding: the resolver reads the transaction topic in
// the file's encoding, and the connector writes it with its value
// converter: a mismatch is an error on apply.transaction.topic, auto reads
// either.
func TestTransactionTopicEncoding(t *testing.T) {
	base := connectors(t, "lossless")[0]
	apicurio := map[string]string{"provide.transaction.metadata": "true", "value.converter": apicurioConverter, "key.converter": apicurioConverter}
	for _, side := range []string{"key", "value"} {
		for _, s := range apicurioWireFormat {
			apicurio[side+".converter."+s.key] = s.want
		}
	}
	jsonConverters := map[string]string{"provide.transaction.metadata": "true", "value.converter": jsonConverter, "key.converter": jsonConverter}
	tests := []struct {
		encoding string
		settings map[string]string
		want     []string
	}{
		{encoding: "avro", settings: apicurio},
		{encoding: "auto", settings: apicurio},
		{encoding: "auto", settings: jsonConverters},
		{encoding: "json", settings: jsonConverters},
		{encoding: "avro", settings: jsonConverters, want: []string{
			`apply.transaction.topic: error: connector "lossless" value.converter=` + jsonConverter + `: the connector writes its transaction topic in JSON, and the resolver reads apply.transaction.topic in the file's encoding, avro: it stops at the first marker (no magic byte); ` +
				`fix: set encoding: json (or auto) at the top of the file, or an Avro converter in the Confluent wire format (` + apicurioConverter + ` or ` + confluentConverter + `) on the connector`,
		}},
		{encoding: "json", settings: apicurio, want: []string{
			`apply.transaction.topic: error: connector "lossless" value.converter=` + apicurioConverter + `: the connector writes its transaction topic in Avro, and the resolver reads apply.transaction.topic in the file's encoding, json: it stops at the first marker; ` +
				`fix: set encoding: avro (or auto) at the top of the file, with schema_registry.url, or value.converter=` + jsonConverter + ` on the connector`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.encoding+" "+tc.settings["value.converter"], func(t *testing.T) {
			cfg := parseConfig(t, `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
encoding: `+tc.encoding+`
schema_registry: { url: 'http://registry:8081' }
apply: { consistency: transaction, transaction: { topic: shop.transaction } }
tables:
  - topic: shop.public.prices
    target: public.prices
`)
			c := Connector{Name: base.Name, Config: maps.Clone(base.Config)}
			maps.Copy(c.Config, tc.settings)
			var got []string
			for _, m := range messages(Check(cfg, []Connector{c}, nil)) {
				if strings.HasPrefix(m, "apply.transaction.topic") {
					got = append(got, m)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestTransactionCoverageOutbox: an Event Router drops the transaction
// block, so transaction mode refuses the connector that carries one. The
// configuration cannot route its topics as format: outbox in this mode
// (config refuses it); a connector writing the transaction topic with a
// router on its outbox table among tables pgsink routes is refused here.
func TestTransactionCoverageOutbox(t *testing.T) {
	cfg := parseConfig(t, `kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
apply: { consistency: transaction, transaction: { topic: shop_outbox.transaction } }
tables:
  - topic: shop_outbox.public.orders
    target: public.orders
`)
	c := connectors(t, "outbox")[0]
	c.Config = maps.Clone(c.Config)
	c.Config["provide.transaction.metadata"] = "true"
	var got []string
	for _, m := range messages(Check(cfg, []Connector{c}, nil)) {
		if strings.HasPrefix(m, "apply.transaction.topic:") {
			got = append(got, m)
		}
	}
	want := []string{`apply.transaction.topic: error: connector "outbox" table.include.list=public.outbox: the connector's Outbox Event Router drops each event's transaction block and the outbox table's updates and deletes, ` +
		`which END counts, so the transactions that write the outbox table never complete and the resolver stops; fix: leave the outbox table out of this connector ` +
		`and read its router's topics with a second pgsink under another group.id with apply.consistency: partition`}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
