package connector

import (
	"errors"
	"testing"

	"github.com/pgsink/pgsink/sink"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Every retry and fallback of a batch is counted, and logged once per kind
// and table for the whole process: a second partition of the same table
// adds to the metric, not to the log.
func TestFallbacksCountedAndLoggedOncePerTable(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	m := NewMetrics()
	deps := &workerDeps{metrics: m, warned: &warnOnce{}}
	batch := func(table string) *sink.Batch {
		return &sink.Batch{Items: []sink.Item{{Table: &sink.Table{Schema: "public", Name: table}}}, Next: 10}
	}
	st := sink.Stats{Retries: 2, RetryCause: errors.New("connection reset"), InsertConflicts: 1,
		Splits: 3, SplitCause: errors.New(`row 0, column "n": unable to encode "NAN"`)}
	for _, p := range []*partition{{workerDeps: deps, log: zap.New(core)}, {workerDeps: deps, log: zap.New(core)}} {
		p.reportFallbacks(batch("a"), st)
	}
	(&partition{workerDeps: deps, log: zap.New(core)}).reportFallbacks(batch("b"), sink.Stats{Splits: 1, SplitCause: errors.New("x")})

	if got := value(m.Splits.WithLabelValues("public.a")); got != 6 {
		t.Errorf("pgsink_apply_splits_total{public.a} = %v, want 6", got)
	}
	if got := value(m.Splits.WithLabelValues("public.b")); got != 1 {
		t.Errorf("pgsink_apply_splits_total{public.b} = %v, want 1", got)
	}
	if got := value(m.InsertConflicts.WithLabelValues("public.a")); got != 2 {
		t.Errorf("pgsink_insert_conflicts_total{public.a} = %v, want 2", got)
	}
	if got := value(m.Retries); got != 4 {
		t.Errorf("pgsink_apply_retries_total = %v, want 4", got)
	}
	for snippet, want := range map[string]int{"pgsink_apply_splits_total": 2, "pgsink_insert_conflicts_total": 1, "pgsink_apply_retries_total": 1} {
		if got := logs.FilterMessageSnippet(snippet).Len(); got != want {
			t.Errorf("%d warnings naming %s, want %d (once per table): %v", got, snippet, want, logs.All())
		}
	}
	split := logs.FilterMessageSnippet("pgsink_apply_splits_total").All()[0].ContextMap()
	if split["table"] != "public.a" || split["error"] != `row 0, column "n": unable to encode "NAN"` {
		t.Errorf("split warning %v, want the table and the first cause", split)
	}
}
