package debezium

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestEnvelopeFacts checks the decoded metadata against what the fixtures'
// README records about Debezium 3.6.1: versions, snapshots, transactions,
// tombstones, primary-key changes and the logical message.
func TestEnvelopeFacts(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			d := NewDecoder(f.options())
			last := map[string]Version{}
			txEvents := map[int64]int64{} // events per TxID
			txEnds := map[int64]int64{}   // END markers' event_count per TxID
			var messages, tombstones, truncates int
			var prevDelete *Change
			for _, r := range f.records {
				ch, err := d.Decode(toRecord(r))
				if err != nil {
					t.Fatalf("%s@%d: %v", r.Topic, r.Offset, err)
				}
				where := r.Topic + "@" + itoa(r.Offset)
				switch ch.Kind {
				case KindChange:
					if ch.Snapshot != (ch.Op == OpRead) {
						t.Errorf("%s: snapshot=%v for op %c", where, ch.Snapshot, ch.Op)
					}
					if ch.Snapshot && ch.Version.CommitLSN != ch.Version.LSN {
						t.Errorf("%s: snapshot row with CommitLSN %d, want its LSN %d (lastCommitLsn is null)", where, ch.Version.CommitLSN, ch.Version.LSN)
					}
					if ch.Snapshot && ch.SnapshotMark == SnapshotNone {
						t.Errorf("%s: snapshot record without a snapshot mark", where)
					}
					if ch.Version.Less(last[ch.Topic]) {
						t.Errorf("%s: version %+v goes back from %+v", where, ch.Version, last[ch.Topic])
					}
					last[ch.Topic] = ch.Version
					if ch.Transaction != nil {
						if ch.Transaction.TxID != ch.TxID || !strings.HasPrefix(ch.Transaction.ID, itoa(ch.TxID)+":") {
							t.Errorf("%s: transaction %+v for txId %d", where, ch.Transaction, ch.TxID)
						}
						txEvents[ch.TxID]++
					}
					if ch.SourceTs.IsZero() || ch.EventTs.Before(ch.SourceTs) {
						t.Errorf("%s: source ts %v, event ts %v", where, ch.SourceTs, ch.EventTs)
					}
					if ch.Op == OpTruncate {
						truncates++
						if ch.Key != nil || ch.Before != nil || ch.After != nil {
							t.Errorf("%s: truncate with a key or image", where)
						}
					}
					if ch.Op == OpDelete {
						c := ch
						prevDelete = &c
					}
				case KindTombstone:
					tombstones++
					if prevDelete == nil || fieldString(ch.Key, "id") != fieldString(prevDelete.Key, "id") {
						t.Errorf("%s: tombstone key %v does not follow a delete of that key", where, ch.Key)
					}
					if ch.Table != "all_types" || ch.Schema != "public" {
						t.Errorf("%s: tombstone of %s.%s, want public.all_types", where, ch.Schema, ch.Table)
					}
				case KindMessage:
					messages++
					m := ch.Message
					if m.Prefix != "pgsink-fixture" || string(m.Content) != "a transactional logical message" || !m.Transactional || ch.Op != OpMessage {
						t.Errorf("%s: message %+v", where, m)
					}
					if ch.Transaction != nil {
						txEvents[ch.TxID]++
					}
				case KindTransaction:
					if ch.TxMark.Status == "END" {
						txEnds[ch.TxMark.TxID] = ch.TxMark.EventCount
					}
				}
			}
			if tombstones < 2 || truncates == 0 || messages == 0 {
				t.Errorf("%d tombstones, %d truncates, %d messages; want ≥2, ≥1, ≥1", tombstones, truncates, messages)
			}
			for tx, n := range txEnds {
				// Transactions none of whose events were recorded (the
				// recorder stops at fixture_end, whose topic it does not keep)
				// are skipped.
				if txEvents[tx] != 0 && txEvents[tx] != n {
					t.Errorf("transaction %d: END counts %d events, %d decoded", tx, n, txEvents[tx])
				}
			}
		})
	}
}

func fieldString(r Row, name string) string {
	f, ok := r.Get(name)
	if !ok {
		return "<none>"
	}
	return fmt.Sprint(f.Value)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestStringDecimalsNeedTheCatalog: under decimal.handling.mode=string the
// schema calls a numeric column a string; only the catalog makes it a
// pgtype.Numeric (which binary COPY needs for Debezium's "NAN").
func TestStringDecimalsNeedTheCatalog(t *testing.T) {
	rec, f := fixtureRecord(t, loadFixtures(t), "decimal_string", ".public.all_types", 4) // id 11, numeric NaN
	withCatalog := f.options()
	withoutCatalog := f.options()
	withoutCatalog.Catalog = nil
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{{"with catalog", withCatalog, "pgtype.Numeric"}, {"without catalog", withoutCatalog, "string"}} {
		ch, err := NewDecoder(c.opts).Decode(rec)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		v, _ := ch.After.Get("c_numeric_free")
		if got := fmt.Sprintf("%T", v.Value); got != c.want {
			t.Errorf("%s: c_numeric_free is %s (%v), want %s", c.name, got, v.Value, c.want)
		}
		if n, ok := v.Value.(pgtype.Numeric); ok && !n.NaN {
			t.Errorf("%s: c_numeric_free %+v, want NaN", c.name, n)
		}
	}
}

// TestCompactSequence: the fast reading of source.sequence agrees with the
// general one on Debezium's forms and leaves every other text to it.
func TestCompactSequence(t *testing.T) {
	for _, c := range []struct {
		text string
		want Version
		fast bool
	}{
		{`["122599608","122599704"]`, Version{122599608, 122599704}, true},
		{`[null,"23"]`, Version{0, 23}, true},
		{`["1",null]`, Version{1, 0}, true},
		{`[null,null]`, Version{}, true},
		{`[ "1", "2" ]`, Version{1, 2}, false},
		{`["-1","2"]`, Version{-1, 2}, false},
		{`["1","2"] `, Version{1, 2}, false},
		{`["99999999999999999999","2"]`, Version{}, false},
		{`["1"]`, Version{}, false},
	} {
		got, ok := compactSequence([]byte(c.text))
		if ok != c.fast || (ok && got != c.want) {
			t.Errorf("compactSequence(%s) = %v, %v; want %v, %v", c.text, got, ok, c.want, c.fast)
		}
		general, err := sequence([]byte(c.text))
		if ok && (err != nil || general != got) {
			t.Errorf("sequence(%s) = %v, %v; the fast reading gave %v", c.text, general, err, got)
		}
	}
}
