package main

import (
	"strings"
	"testing"

	"github.com/pgsink/pgsink/config"
)

// replay --table (and --into, --online, verify --repair) of a table a
// record-reading template writes says why it has no topics; a table named
// per topic still gets its topics.
func TestTableTopicsPerRecordTarget(t *testing.T) {
	cfg, err := config.Parse("pgsink.yaml", []byte(`kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic: merged
    target: 'public.${source.table}_c'
  - topic_pattern: 'app\.(?P<s>[^.]+)\.(?P<t>[^.]+)'
    target: '${s}.${t}'
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	router := cfg.Router()
	all := []string{"merged", "app.public.orders", "other"}
	topics, targets, err := tableTopics(router, all, "public.orders")
	if err != nil || len(topics) != 1 || topics[0] != "app.public.orders" || targets[0].String() != "public.orders" {
		t.Fatalf("public.orders: %v %v %v", topics, targets, err)
	}
	_, _, err = tableTopics(router, all, "public.m_one_c")
	if err == nil || !strings.Contains(err.Error(), "merged (tables[0]: public.${source.table}_c)") || !strings.Contains(err.Error(), "decided per record") {
		t.Fatalf("public.m_one_c: %v; want the refusal naming the record-decided topic", err)
	}
}
