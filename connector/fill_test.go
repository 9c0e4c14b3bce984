package connector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/dedup"
)

func TestBoundPast(t *testing.T) {
	at := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	change := func(ts time.Time, lsn int64) *debezium.Change {
		return &debezium.Change{Topic: "t", SourceTs: ts, Version: debezium.Version{CommitLSN: lsn, LSN: lsn}}
	}
	tests := []struct {
		name  string
		bound Bound
		ch    *debezium.Change
		past  bool
		err   string
	}{
		{"committed before the time", Bound{At: at}, change(at.Add(-time.Microsecond), 1), false, ""},
		{"committed at the time: included", Bound{At: at}, change(at, 1), false, ""},
		{"committed after the time", Bound{At: at}, change(at.Add(time.Microsecond), 1), true, ""},
		{"no source time", Bound{At: at}, change(time.Time{}, 1), false, "no source time"},
		{"before the LSN", Bound{LSN: 100}, change(at, 99), false, ""},
		{"at the LSN: excluded", Bound{LSN: 100}, change(at, 100), true, ""},
		{"no source LSN", Bound{LSN: 100}, change(at, 0), false, "no source LSN"},
	}
	for _, tt := range tests {
		past, err := tt.bound.past(tt.ch)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || past != tt.past {
			t.Errorf("%s: past = %v, %v; want %v", tt.name, past, err, tt.past)
		}
	}
}

// TestTemplatedFillTables: a rule whose template derives the filled target
// for one of the fill's topics becomes an entry of that topic into the
// fill's table; other topics of the rule are not filled.
func TestTemplatedFillTables(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`kafka: { bootstrap.servers: k, group.id: g }
postgres: { url: u }
tables:
  - topic_pattern: 'app\.(?P<schema>[^.]+)\.(?P<table>.+)'
    target: '${schema}.${table}'
    deletes: soft
    schema: { create: true }
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	part := func(topic string) FillPartition {
		return FillPartition{ID: dedup.PartitionID{Group: "fill", Topic: topic}}
	}
	got := templatedFillTables(cfg, FillOptions{Source: config.TableName{Schema: "public", Name: "orders"},
		Into:       config.TableName{Schema: "public", Name: "orders_new"},
		Partitions: []FillPartition{part("app.public.orders"), part("app.public.orders"), part("app.public.customers")}})
	if len(got) != 1 || got[0].Topic != "app.public.orders" || got[0].Target.TableName != (config.TableName{Schema: "public", Name: "orders_new"}) ||
		got[0].Target.Template != nil || !got[0].TopicPattern.IsZero() || got[0].Deletes != config.DeletesSoft || got[0].Schema.Create {
		t.Fatalf("got %+v; want one entry of app.public.orders into public.orders_new, deletes soft, not created", got)
	}
}

// TestPastByCommitPrunedDuringCopy: a transaction T recorded with commit
// 600 when the copy's cut was read (oldest recorded commit 100) and pruned
// by retention.tombstones while the copy runs reads as commit 0. Placed by
// the cut's oldest commit it went before --until lsn:500 although it
// committed after: one partition that read T before the prune ended at it,
// another copied it (review of txinto). Placed by the oldest commit read
// after ResolvedCommits (past 600 once T is pruned) it cannot be placed,
// and the copy refuses; without a prune it is placed as before.
func TestPastByCommitPrunedDuringCopy(t *testing.T) {
	f := &Fill{until: Bound{LSN: 500}, txCut: &dedup.TxCut{CommitLSN: 1000, OldestCommitLSN: 100}}
	ch := &debezium.Change{Topic: "t", Partition: 0, Offset: 7, Transaction: &debezium.Transaction{TxID: 42}}
	noRead := int64(-2) // any read would be a bug: the commit is known
	if past, err := f.pastByCommit(context.Background(), ch, 600, &noRead); err != nil || !past {
		t.Fatalf("T's commit 600 known: past = %v, %v; want true", past, err)
	}
	pruned := int64(700) // the oldest recorded commit after T's prune
	if past, err := f.pastByCommit(context.Background(), ch, 0, &pruned); err == nil {
		t.Errorf("T pruned during the copy: past = %v and no error; want a refusal, not a place before the bound", past)
	}
	kept := int64(100) // nothing pruned: a commit-less transaction predates 100
	if past, err := f.pastByCommit(context.Background(), ch, 0, &kept); err != nil || past {
		t.Errorf("a transaction recorded without its commit, nothing pruned: past = %v, %v; want false, nil", past, err)
	}
}
