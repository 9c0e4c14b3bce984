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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := txFindings(with(tc.settings)); !slices.Equal(got, tc.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
