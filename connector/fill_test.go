package connector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
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

// fakeFillConsumer records what a fill asks of its consumer, in order.
type fakeFillConsumer struct {
	calls    []string
	position int64
}

func (c *fakeFillConsumer) Seek(tp kafka.TopicPartition, _ int) error {
	c.calls = append(c.calls, fmt.Sprintf("seek %s[%d]@%d", *tp.Topic, tp.Partition, tp.Offset))
	return nil
}

func (c *fakeFillConsumer) Pause(tps []kafka.TopicPartition) error {
	for _, tp := range tps {
		c.calls = append(c.calls, fmt.Sprintf("pause %s[%d]", *tp.Topic, tp.Partition))
	}
	return nil
}

func (c *fakeFillConsumer) Resume(tps []kafka.TopicPartition) error {
	for _, tp := range tps {
		c.calls = append(c.calls, fmt.Sprintf("resume %s[%d]", *tp.Topic, tp.Partition))
	}
	return nil
}

func (c *fakeFillConsumer) Position(tps []kafka.TopicPartition) ([]kafka.TopicPartition, error) {
	out := slices.Clone(tps)
	for i := range out {
		out[i].Offset = kafka.Offset(c.position)
	}
	return out, nil
}

// TestFillWaitingPartitionBacksOff: a partition of an online rebuild that
// stands at a transaction the resolver has not applied is paused, and
// reads its records again (resume, then seek: the seek drops what was
// fetched before it) only once its backoff has passed, which doubles from
// fillWaitMin to fillWaitMax while it keeps waiting. Before, every round
// of the fill's loop (apply.batch.max_wait) sought it back at once, so it
// fetched its records anew and asked the target about them every few
// milliseconds for as long as the other partitions filled. A waiting
// partition is not taken for done because its consumer fetched past its
// end (those records were dropped).
func TestFillWaitingPartitionBacksOff(t *testing.T) {
	p := &fillPart{id: dedup.PartitionID{Topic: "t", Partition: 1}, end: 20, seek: -1}
	f := &Fill{order: []*fillPart{p}, parts: map[fillKey]*fillPart{{"t", 1}: p}}
	c := &fakeFillConsumer{position: 30}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p.waitAt(5, t0)
	if err := f.flush(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	f.passedEnds(c)
	if p.done {
		t.Fatal("a partition waiting at offset 5 was marked done because its consumer fetched past its end (20)")
	}
	if err := f.lookAgain(c, t0.Add(fillWaitMin-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"pause t[1]"}; !slices.Equal(c.calls, want) {
		t.Fatalf("before its backoff passed, the fill asked %v of the consumer, want %v (paused, not read again)", c.calls, want)
	}
	if err := f.lookAgain(c, t0.Add(fillWaitMin)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"pause t[1]", "resume t[1]", "seek t[1]@5"}; !slices.Equal(c.calls, want) {
		t.Fatalf("once its backoff passed, the fill asked %v of the consumer, want %v", c.calls, want)
	}
	var waits []time.Duration
	for range 6 {
		p.waitAt(5, t0)
		waits = append(waits, p.retry.Sub(t0))
	}
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}; !slices.Equal(waits, want) {
		t.Errorf("waiting again and again: backoffs %v, want %v", waits, want)
	}
}
