package connector

import (
	"strings"
	"testing"
	"time"

	"github.com/pgsink/pgsink/debezium"
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
