package debezium

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// The durations are what Debezium 3.6.1 sent under
// interval.handling.mode=string for the intervals in the comments
// (TestE2ELosslessSettings sends them through the real stack).
func TestISOIntervalExact(t *testing.T) {
	for _, c := range []struct {
		in   string
		want pgtype.Interval
	}{
		// '1 year 2 mons 3 days 04:05:06.789'
		{"P1Y2M3DT4H5M6.789S", pgtype.Interval{Months: 14, Days: 3, Microseconds: 14_706_789_000, Valid: true}},
		// '-1 year -2 mons +3 days -04:05:06.000001'
		{"P-1Y-2M3DT-4H-5M-6.000001S", pgtype.Interval{Months: -14, Days: 3, Microseconds: -14_706_000_001, Valid: true}},
		// '-178000000 years', PostgreSQL's smallest
		{"P-178000000Y0M0DT0H0M0S", pgtype.Interval{Months: -2_136_000_000, Valid: true}},
		// '1 mon -1 day 1.5 sec'
		{"P0Y1M-1DT0H0M1.5S", pgtype.Interval{Months: 1, Days: -1, Microseconds: 1_500_000, Valid: true}},
		{"P0Y0M0DT0H0M0S", pgtype.Interval{Valid: true}},
		// hours beyond int32, which PostgreSQL's interval holds
		{"PT2562047788H", pgtype.Interval{Microseconds: 2562047788 * 3600_000_000, Valid: true}},
		{"P+1D", pgtype.Interval{Days: 1, Valid: true}},
	} {
		got, err := isoInterval([]byte(c.in))
		if err != nil || got.Interval != c.want || got.Text != c.in {
			t.Errorf("isoInterval(%q) = %+v, %v; want %+v with its text", c.in, got, err, c.want)
		}
		text, err := got.TextValue()
		if err != nil || text.String != c.in {
			t.Errorf("isoInterval(%q).TextValue() = %q, %v; want the text Debezium sent", c.in, text.String, err)
		}
		iv, err := got.IntervalValue()
		if err != nil || iv != c.want {
			t.Errorf("isoInterval(%q).IntervalValue() = %+v, %v; want %+v", c.in, iv, err, c.want)
		}
	}
	for _, bad := range []string{
		"P178956971Y",            // months beyond int32
		"P2147483648D",           // days beyond int32
		"PT9223372036854775807H", // microseconds beyond int64
		"PT2562047788H2562047788H",
		"P1YT", "PTT1H", "P1.5Y", "P--1D",
	} {
		if got, err := isoInterval([]byte(bad)); err == nil {
			t.Errorf("isoInterval(%q) = %+v, want an error", bad, got)
		}
	}
}
