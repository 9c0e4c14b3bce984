package debezium

import (
	"bytes"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// typeTally counts what the golden test checked per PostgreSQL type.
type typeTally struct {
	fixtures          map[string]bool
	values, nulls, ph int
	debeziumLoss      int
	lossNotes         map[string]bool
}

// TestGolden decodes every recorded record and compares every decoded row
// value with the value PostgreSQL itself returned for that row change
// (rows.jsonl), column by column.
func TestGolden(t *testing.T) {
	tally := map[string]*typeTally{}
	for _, f := range loadFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			d := NewDecoder(f.options())
			types := map[string]map[string]string{}
			for table, cols := range f.catalog {
				types[strings.TrimPrefix(table, "public.")] = map[string]string{}
				for _, c := range cols {
					types[strings.TrimPrefix(table, "public.")][c.Name] = c.Type
				}
			}
			// Audit rows waiting for their events, per table in order; a
			// primary-key update is one audit row and two events.
			pending := map[string][]*pendingRow{}
			for i := range f.rows {
				r := &f.rows[i]
				n := 1
				if r.Op == "UPDATE" && keyOf(r.Table, r.Old) != keyOf(r.Table, r.New) {
					n = 2
				}
				pending[r.Table] = append(pending[r.Table], &pendingRow{row: r, events: n})
			}
			var outbox []Change
			kinds := map[Kind]int{}
			for _, rec := range f.records {
				ch, err := d.Decode(toRecord(rec))
				if err != nil {
					t.Errorf("record %s@%d does not decode: %v", rec.Topic, rec.Offset, err)
					continue
				}
				kinds[ch.Kind]++
				switch ch.Kind {
				case KindOutbox:
					outbox = append(outbox, ch)
				case KindChange:
					if ch.Table == "fixture_end" {
						continue
					}
					pr := match(t, pending[ch.Table], ch)
					if pr == nil {
						continue
					}
					checkImages(t, f, types[ch.Table], pr.row, ch, tally)
				}
			}
			for table, prs := range pending {
				for _, pr := range prs {
					if pr.events > 0 && table != "outbox" {
						t.Errorf("audit row %d (%s %s) has no matching event", pr.row.Seq, table, pr.row.Op)
					}
				}
			}
			for _, k := range []Kind{KindChange, KindTombstone, KindOutbox, KindMessage, KindTransaction} {
				if kinds[k] == 0 {
					t.Errorf("no record decoded as kind %d", k)
				}
			}
			checkOutbox(t, f, outbox)
		})
	}
	var names []string
	for n := range tally {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%-30s %-60s %7s %6s %5s %5s", "type", "fixtures", "values", "nulls", "TOAST", "loss")
	for _, n := range names {
		c := tally[n]
		var fx []string
		for f := range c.fixtures {
			fx = append(fx, f)
		}
		sort.Strings(fx)
		var notes []string
		for n := range c.lossNotes {
			notes = append(notes, n)
		}
		sort.Strings(notes)
		t.Logf("%-30s %-60s %7d %6d %5d %5d %s", n, strings.Join(fx, ","), c.values, c.nulls, c.ph, c.debeziumLoss, strings.Join(notes, "; "))
	}
}

type pendingRow struct {
	row    *auditRow
	events int
}

func keyOf(table string, img map[string]json.RawMessage) string {
	if table == "CamelCase" {
		return string(img["Id"])
	}
	return string(img["id"])
}

// match finds the audit row of a change: the first waiting row of the same
// transaction (events arrive in commit order, audit rows in statement
// order), or for snapshot reads the insert of the same key.
func match(t *testing.T, prs []*pendingRow, ch Change) *pendingRow {
	t.Helper()
	keyName := "id"
	if ch.Table == "CamelCase" {
		keyName = "Id"
	}
	key := ""
	if k, ok := ch.Key.Get(keyName); ok {
		key = fmt.Sprint(k.Value)
	}
	for _, pr := range prs {
		if pr.events == 0 {
			continue
		}
		r := pr.row
		var ok bool
		switch ch.Op {
		case OpRead:
			ok = r.Op == "INSERT" && keyOf(r.Table, r.New) == key
		case OpTruncate:
			ok = r.Op == "TRUNCATE" && r.TxID == ch.TxID
		default:
			ok = r.TxID == ch.TxID && r.Op != "TRUNCATE"
		}
		if ok {
			pr.events--
			want := map[string][]string{"INSERT": {"c"}, "DELETE": {"d"}, "UPDATE": {"u", "d", "c"}, "TRUNCATE": {"t"}}[r.Op]
			if ch.Op == OpRead || slicesContains(want, string(ch.Op)) {
				return pr
			}
			t.Errorf("%s@%d: op %c for audit %s", ch.Topic, ch.Offset, ch.Op, r.Op)
			return nil
		}
	}
	t.Errorf("%s@%d: no audit row for op %c txid %d key %s", ch.Topic, ch.Offset, ch.Op, ch.TxID, key)
	return nil
}

func slicesContains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

func checkImages(t *testing.T, f *fixture, types map[string]string, r *auditRow, ch Change, tally map[string]*typeTally) {
	t.Helper()
	where := fmt.Sprintf("%s@%d op %c", ch.Topic, ch.Offset, ch.Op)
	full := f.setting("table.include.list") != "" && strings.Contains(f.name, "full")
	switch ch.Op {
	case OpCreate, OpRead, OpUpdate:
		if ch.After == nil {
			t.Fatalf("%s: no after image", where)
		}
		checkRow(t, f, types, where+" after", r.New, r.Old, ch.After, false, tally)
	}
	if ch.Op == OpCreate && r.Op == "UPDATE" && len(ch.OldKey) == 0 {
		t.Errorf("%s: the create of a primary-key change has no OldKey", where)
	}
	if ch.Op == OpDelete && r.Op == "UPDATE" && len(ch.NewKey) == 0 {
		t.Errorf("%s: the delete of a primary-key change has no NewKey", where)
	}
	if ch.Op == OpDelete || (ch.Op == OpUpdate && full) {
		if ch.Before == nil {
			t.Fatalf("%s: no before image", where)
		}
		// REPLICA IDENTITY DEFAULT gives the key columns only.
		checkRow(t, f, types, where+" before", r.Old, nil, ch.Before, !full, tally)
	}
	if ch.Version.LSN == 0 {
		t.Errorf("%s: no LSN in the version", where)
	}
	if !ch.Snapshot && ch.Transaction == nil {
		t.Errorf("%s: streamed event without a transaction block", where)
	}
}

func checkRow(t *testing.T, f *fixture, types map[string]string, where string, want, old map[string]json.RawMessage, got Row, keyOnly bool, tally map[string]*typeTally) {
	t.Helper()
	if !keyOnly && len(got) != len(want) {
		t.Errorf("%s: %d columns decoded, PostgreSQL has %d", where, len(got), len(want))
	}
	for _, g := range got {
		w, ok := want[g.Name]
		if !ok {
			t.Errorf("%s: decoded column %q that PostgreSQL does not have", where, g.Name)
			continue
		}
		if keyOnly && g.Name != "id" && g.Name != "Id" {
			if g.Value != nil {
				t.Errorf("%s.%s: identity DEFAULT before image has %v for a non-key column, want NULL", where, g.Name, g.Value)
			}
			continue
		}
		pgType := types[g.Name]
		c := tally[pgType]
		if c == nil {
			c = &typeTally{fixtures: map[string]bool{}, lossNotes: map[string]bool{}}
			tally[pgType] = c
		}
		c.fixtures[f.name] = true
		if g.Unchanged {
			c.ph++
			if old == nil || !bytes.Equal(old[g.Name], w) {
				t.Errorf("%s.%s: decoded as unchanged TOAST, but PostgreSQL changed it", where, g.Name)
			}
			continue
		}
		if string(w) == `"NaN"` && g.Value == nil && strings.HasPrefix(pgType, "numeric") && f.setting("decimal.handling.mode") == "precise" {
			// Debezium sends numeric NaN as null under precise mode.
			c.debeziumLoss++
			c.lossNotes["NaN arrives as null (precise)"] = true
			continue
		}
		if string(w) == "null" {
			c.nulls++
			if g.Value != nil {
				t.Errorf("%s.%s (%s): got %#v, want NULL", where, g.Name, pgType, g.Value)
			}
			continue
		}
		c.values++
		loss, err := equalPG(pgType, f.setting("decimal.handling.mode"), g.Value, w)
		if err != nil {
			t.Errorf("%s.%s (%s): %v", where, g.Name, pgType, err)
		}
		if loss != "" {
			c.debeziumLoss++
			c.lossNotes[loss] = true
		}
	}
}

// equalPG compares a decoded value with PostgreSQL's row_to_json rendering.
// loss names a documented Debezium loss when the comparison had to be made
// on what Debezium keeps.
func equalPG(pgType, decimalMode string, got any, want json.RawMessage) (loss string, err error) {
	var wantStr string
	isStr := json.Unmarshal(want, &wantStr) == nil
	mismatch := func() error { return fmt.Errorf("got %#v, want %s", got, want) }
	switch {
	case pgType == "smallint" || pgType == "integer" || pgType == "bigint":
		n, _ := strconv.ParseInt(string(want), 10, 64)
		if reflect.ValueOf(got).Kind() < reflect.Int || reflect.ValueOf(got).Kind() > reflect.Int64 || reflect.ValueOf(got).Int() != n {
			return "", mismatch()
		}
	case strings.HasPrefix(pgType, "numeric") || pgType == "money":
		text := string(want)
		if isStr {
			text = wantStr
		}
		if pgType == "money" {
			text = strings.NewReplacer("$", "", ",", "").Replace(text)
		}
		if g, ok := got.(string); ok {
			// decimal.handling.mode=string: the schema says string, so the
			// value stays text, which PostgreSQL parses exactly ("NAN" too).
			if strings.EqualFold(g, "NaN") && text == "NaN" {
				return "", nil
			}
			gr, ok1 := new(big.Rat).SetString(g)
			wr, ok2 := new(big.Rat).SetString(text)
			if !ok1 || !ok2 || gr.Cmp(wr) != 0 {
				return "", mismatch()
			}
			return "", nil
		}
		if f, ok := got.(float64); ok { // decimal.handling.mode=double
			w, _ := strconv.ParseFloat(text, 64)
			if f != w && !(math.IsNaN(f) && math.IsNaN(w)) {
				return "", mismatch()
			}
			exact, _ := new(big.Rat).SetString(text)
			if exact == nil || new(big.Rat).SetFloat64(f).Cmp(exact) != 0 {
				return "double mode rounds numerics", nil
			}
			return "", nil
		}
		n, ok := got.(pgtype.Numeric)
		if !ok {
			return "", mismatch()
		}
		if text == "NaN" {
			if !n.NaN {
				return "", mismatch()
			}
			return "", nil
		}
		w, ok := new(big.Rat).SetString(text)
		if !ok || n.Int == nil {
			return "", mismatch()
		}
		g := new(big.Rat).SetInt(n.Int)
		exp := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs32(n.Exp))), nil))
		if n.Exp < 0 {
			g.Quo(g, exp)
		} else {
			g.Mul(g, exp)
		}
		if g.Cmp(w) != 0 {
			return "", mismatch()
		}
	case pgType == "real" || pgType == "double precision":
		bits := 64
		if pgType == "real" {
			bits = 32
		}
		text := string(want)
		if isStr {
			text = wantStr
		}
		w, _ := strconv.ParseFloat(text, bits)
		var g float64
		switch v := got.(type) {
		case float32:
			g = float64(v)
		case float64:
			g = v
		default:
			return "", mismatch()
		}
		if !(g == w || (math.IsNaN(g) && math.IsNaN(w))) || (bits == 32 && float64(float32(w)) != g) {
			return "", mismatch()
		}
	case pgType == "boolean":
		if got != (string(want) == "true") {
			return "", mismatch()
		}
	case pgType == "bytea":
		b, err := hex.DecodeString(strings.TrimPrefix(wantStr, "\\x"))
		if g, ok := got.([]byte); err != nil || !ok || !bytes.Equal(g, b) {
			return "", mismatch()
		}
	case pgType == "json" || pgType == "jsonb":
		g, ok := got.(string)
		var gv, wv any
		if !ok || json.Unmarshal([]byte(g), &gv) != nil || json.Unmarshal(want, &wv) != nil || !reflect.DeepEqual(gv, wv) {
			return "", mismatch()
		}
	case pgType == "date":
		if pgDate(got) != wantStr {
			return "", mismatch()
		}
	case strings.HasPrefix(pgType, "time") && strings.HasSuffix(pgType, "without time zone") && !strings.HasPrefix(pgType, "timestamp"):
		g, ok := got.(pgtype.Time)
		if !ok {
			return "", mismatch()
		}
		if pgTime(g.Microseconds) != wantStr {
			// time.precision.mode=connect truncates to milliseconds.
			if decimalMode == "double" && g.Microseconds%1000 == 0 && pgTime(g.Microseconds) == truncMillis(wantStr) {
				return "connect mode truncates to ms", nil
			}
			return "", mismatch()
		}
	case pgType == "time with time zone":
		// Debezium sends timetz normalised to UTC: the offset is lost, the
		// instant (modulo a day) is kept.
		g, ok := got.(string)
		if !ok || timetzUTC(g) != timetzUTC(wantStr) || timetzUTC(g) < 0 {
			return "", mismatch()
		}
		return "timetz offset normalised to UTC", nil
	case strings.HasPrefix(pgType, "timestamp") && strings.HasSuffix(pgType, "without time zone"):
		g, ok := got.(pgtype.Timestamp)
		if !ok {
			return "", mismatch()
		}
		if gs := pgTimestamp(g.Time, g.InfinityModifier, false); gs != wantStr {
			if decimalMode == "double" && g.Time.Nanosecond()%1e6 == 0 && gs == truncMillis(wantStr) {
				return "connect mode truncates to ms", nil
			}
			return "", mismatch()
		}
	case pgType == "timestamp with time zone":
		g, ok := got.(pgtype.Timestamptz)
		if !ok {
			return "", mismatch()
		}
		if wantStr == "infinity" || wantStr == "-infinity" {
			if pgTimestamp(g.Time, g.InfinityModifier, true) != wantStr {
				return "", mismatch()
			}
			return "", nil
		}
		w, err := time.Parse("2006-01-02T15:04:05.999999Z07:00", wantStr)
		if err != nil || !w.Equal(g.Time) {
			return "", mismatch()
		}
	case pgType == "interval":
		if iso, ok := got.(ISOInterval); ok {
			// interval.handling.mode=string: months, days and time exact.
			w, err := pgInterval(wantStr)
			if err != nil || iso.Interval != w {
				return "", fmt.Errorf("got %#v, want %+v of %s (%v)", got, w, want, err)
			}
			return "", nil
		}
		g, ok := got.(pgtype.Interval)
		w, err := debeziumMicros(wantStr)
		if !ok || err != nil || g.Months != 0 || g.Days != 0 || g.Microseconds != w {
			return "", fmt.Errorf("got %#v, want MicroDuration %d of %s (%v)", got, w, want, err)
		}
		if w == math.MaxInt64 {
			return "MicroDuration saturates", nil
		}
		return "MicroDuration folds months into 30.4375 days", nil
	case strings.HasSuffix(pgType, "[]"):
		var ws []any
		if err := json.Unmarshal(want, &ws); err != nil {
			return "", err
		}
		gs, ok := elements(got)
		if !ok || len(gs) != len(ws) {
			return "", mismatch()
		}
		for i := range ws {
			if ws[i] == nil || gs[i] == nil {
				if ws[i] != gs[i] {
					return "", mismatch()
				}
				continue
			}
			if fmt.Sprint(ws[i]) != fmt.Sprint(gs[i]) {
				return "", mismatch()
			}
		}
	case strings.HasPrefix(pgType, "bit"):
		g, ok := got.(pgtype.Bits)
		if !ok || bitString(g) != wantStr {
			return "", mismatch()
		}
	case pgType == "point":
		g, ok := got.(pgtype.Point)
		var x, y float64
		if _, err := fmt.Sscanf(wantStr, "(%g,%g)", &x, &y); err != nil || !ok || g.P.X != x || g.P.Y != y {
			return "", mismatch()
		}
	default: // text types, uuid, inet, cidr, macaddr, xml, enums
		if g, ok := got.(string); !ok || !isStr || g != wantStr {
			return "", mismatch()
		}
	}
	return "", nil
}

// truncMillis cuts a time text's fraction to milliseconds, trailing zeros
// dropped as PostgreSQL prints them.
func truncMillis(s string) string {
	i := strings.LastIndexByte(s, '.')
	if i < 0 || len(s)-i-1 <= 3 {
		return s
	}
	return strings.TrimRight(strings.TrimRight(s[:i+4], "0"), ".")
}

// elements lists a decoded array's elements as driver values, nil for NULL.
func elements(v any) ([]any, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		e := rv.Index(i).Interface()
		if dv, ok := e.(driver.Valuer); ok {
			var err error
			if e, err = dv.Value(); err != nil {
				return nil, false
			}
		}
		out[i] = e
	}
	return out, true
}

func abs32(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}

func pgDate(v any) string {
	d, ok := v.(pgtype.Date)
	if !ok {
		return fmt.Sprintf("%#v", v)
	}
	switch d.InfinityModifier {
	case pgtype.Infinity:
		return "infinity"
	case pgtype.NegativeInfinity:
		return "-infinity"
	}
	return d.Time.Format("2006-01-02")
}

func pgTime(us int64) string {
	s := fmt.Sprintf("%02d:%02d:%02d", us/3600e6, us/60e6%60, us/1e6%60)
	if frac := us % 1e6; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
	}
	return s
}

func pgTimestamp(t time.Time, inf pgtype.InfinityModifier, zone bool) string {
	switch inf {
	case pgtype.Infinity:
		return "infinity"
	case pgtype.NegativeInfinity:
		return "-infinity"
	}
	return t.Format("2006-01-02T15:04:05.999999")
}

// timetzUTC returns a timetz text's time of day in UTC, in microseconds.
func timetzUTC(s string) int64 {
	i := strings.LastIndexAny(s, "+-Z")
	if i < 0 {
		return -1
	}
	var h, m int64
	var sec float64
	if _, err := fmt.Sscanf(s[:i], "%d:%d:%g", &h, &m, &sec); err != nil {
		return -1
	}
	us := h*3600e6 + m*60e6 + int64(math.Round(sec*1e6))
	if s[i] != 'Z' {
		parts := strings.Split(s[i+1:], ":")
		oh, _ := strconv.ParseInt(parts[0], 10, 64)
		var om int64
		if len(parts) > 1 {
			om, _ = strconv.ParseInt(parts[1], 10, 64)
		}
		off := oh*3600e6 + om*60e6
		if s[i] == '-' {
			off = -off
		}
		us -= off
	}
	return ((us % 86400e6) + 86400e6) % 86400e6
}

// debeziumMicros computes what Debezium's MicroDuration sends for a
// PostgreSQL interval text: months are 30.4375 days (365.25/12), and the
// sum saturates at the int64 limits.
// pgInterval reads PostgreSQL's rendering of an interval ("1 year 2 mons
// 3 days -04:05:06.789") into its exact months, days and microseconds.
func pgInterval(s string) (pgtype.Interval, error) {
	iv := pgtype.Interval{Valid: true}
	f := strings.Fields(s)
	for i := 0; i < len(f); i++ {
		if strings.Contains(f[i], ":") {
			clock, neg := strings.CutPrefix(f[i], "-")
			hms, frac, _ := strings.Cut(clock, ".")
			var h, m, sec int64
			if _, err := fmt.Sscanf(hms, "%d:%d:%d", &h, &m, &sec); err != nil {
				return iv, fmt.Errorf("interval %q: %v", s, err)
			}
			us := (h*3600 + m*60 + sec) * 1_000_000
			if frac != "" {
				n, err := strconv.ParseInt((frac + "000000")[:6], 10, 64)
				if err != nil {
					return iv, fmt.Errorf("interval %q: %v", s, err)
				}
				us += n
			}
			if neg {
				us = -us
			}
			iv.Microseconds += us
			continue
		}
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || i+1 >= len(f) {
			return iv, fmt.Errorf("interval %q", s)
		}
		i++
		switch strings.TrimSuffix(f[i], "s") {
		case "year":
			iv.Months += int32(n * 12)
		case "mon":
			iv.Months += int32(n)
		case "day":
			iv.Days += int32(n)
		default:
			return iv, fmt.Errorf("interval %q: unit %q", s, f[i])
		}
	}
	return iv, nil
}

func debeziumMicros(s string) (int64, error) {
	f := strings.Fields(s)
	total := new(big.Int)
	add := func(n int64, unit int64) { total.Add(total, new(big.Int).Mul(big.NewInt(n), big.NewInt(unit))) }
	for i := 0; i < len(f); i++ {
		if strings.Contains(f[i], ":") {
			neg := strings.HasPrefix(f[i], "-")
			var h, m int64
			var sec float64
			if _, err := fmt.Sscanf(strings.TrimPrefix(f[i], "-"), "%d:%d:%g", &h, &m, &sec); err != nil {
				return 0, err
			}
			us := h*3600e6 + m*60e6 + int64(math.Round(sec*1e6))
			if neg {
				us = -us
			}
			add(us, 1)
			continue
		}
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || i+1 >= len(f) {
			return 0, fmt.Errorf("interval %q", s)
		}
		i++
		switch strings.TrimSuffix(f[i], "s") {
		case "year":
			add(n*12, 2629800000000)
		case "mon":
			add(n, 2629800000000)
		case "day":
			add(n, 86400000000)
		default:
			return 0, fmt.Errorf("interval unit %q", f[i])
		}
	}
	if total.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return math.MaxInt64, nil
	}
	if total.Cmp(big.NewInt(math.MinInt64)) < 0 {
		return math.MinInt64, nil
	}
	return total.Int64(), nil
}

func bitString(b pgtype.Bits) string {
	var sb strings.Builder
	for i := 0; i < int(b.Len); i++ {
		if b.Bytes[i/8]&(0x80>>(i%8)) != 0 {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	}
	return sb.String()
}

// checkOutbox compares the outbox records with the outbox rows inserted.
func checkOutbox(t *testing.T, f *fixture, got []Change) {
	t.Helper()
	byID := map[string]Change{}
	for _, ch := range got {
		byID[ch.Outbox.EventID] = ch
	}
	var inserts int
	for _, r := range f.rows {
		if r.Table != "outbox" || r.Op != "INSERT" {
			continue
		}
		inserts++
		var id, agg, typ string
		_ = json.Unmarshal(r.New["id"], &id)
		_ = json.Unmarshal(r.New["aggregateid"], &agg)
		_ = json.Unmarshal(r.New["type"], &typ)
		ch, ok := byID[id]
		if !ok {
			t.Errorf("outbox row %s has no decoded event", id)
			continue
		}
		ev := ch.Outbox
		if ev.AggregateID != agg || ev.Type != typ {
			t.Errorf("outbox event %s: aggregate %q type %q, want %q %q", id, ev.AggregateID, ev.Type, agg, typ)
		}
		var gv, wv any
		if json.Unmarshal(ev.Payload, &gv) != nil || json.Unmarshal(r.New["payload"], &wv) != nil || !reflect.DeepEqual(gv, wv) {
			t.Errorf("outbox event %s: payload %s, want %s", id, ev.Payload, r.New["payload"])
		}
	}
	if inserts != len(got) {
		t.Errorf("%d outbox events decoded, %d outbox rows inserted", len(got), inserts)
	}
}
