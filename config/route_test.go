package config

import (
	"errors"
	"slices"
	"testing"
)

func TestRouterResolve(t *testing.T) {
	cfg, problems := parse(t, minimalHeader+`tables:
  - topic: app.public.customers
    target: public.customers
  - topics: [app.public.orders, app.public.orders_archive]
    target: public.orders
  - topic_pattern: 'app\.public\.shard_\d+'
    target: public.shards
  - topic_pattern: 'app\.public\..*'
    target: public.everything_else
`)
	if problems != nil {
		t.Fatalf("want a valid configuration, got:\n%v", problems)
	}
	router := cfg.Router()
	tests := []struct {
		topic     string
		wantTable string // key path of the table, "" for an error
		wantErr   error
		ambiguous bool
	}{
		{topic: "app.public.customers", wantTable: "tables[0]"},
		{topic: "app.public.orders_archive", wantTable: "tables[1]"},
		{topic: "app.public.shard_7", ambiguous: true},
		{topic: "app.public.invoices", wantTable: "tables[3]"},
		{topic: "xapp.public.invoices", wantErr: ErrNoTable},
		{topic: "app.public.shard_7x", wantTable: "tables[3]"},
	}
	for _, tt := range tests {
		got, err := router.Resolve(tt.topic)
		var amb *AmbiguousTopicError
		switch {
		case tt.ambiguous:
			if !errors.As(err, &amb) || !slices.Equal(amb.Tables, []string{"tables[2]", "tables[3]"}) {
				t.Errorf("Resolve(%q) = %v, %v; want an AmbiguousTopicError naming tables[2] and tables[3]", tt.topic, got, err)
			}
		case tt.wantErr != nil:
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Resolve(%q) error = %v, want %v", tt.topic, err, tt.wantErr)
			}
		case err != nil || got.Path != tt.wantTable:
			t.Errorf("Resolve(%q) = %v, %v; want %s", tt.topic, got, err, tt.wantTable)
		}
	}
	if got, want := router.NamedTopics(), []string{"app.public.customers", "app.public.orders", "app.public.orders_archive"}; !slices.Equal(got, want) {
		t.Errorf("NamedTopics() = %v, want %v", got, want)
	}
}

// TestPatternAnchoring checks that a pattern cannot escape its anchors
// with an alternation.
func TestPatternAnchoring(t *testing.T) {
	var p Pattern
	if err := p.parseScalar(`a|b`); err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{"a": true, "b": true, "ab": false, "xa": false, "bx": false} {
		if got := p.Match(topic); got != want {
			t.Errorf("pattern a|b matches %q: %v, want %v", topic, got, want)
		}
	}
	if err := p.parseScalar(`a)|(b`); err == nil {
		t.Errorf("pattern a)|(b was accepted, want an error: unbalanced on its own")
	}
}
