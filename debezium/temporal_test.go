package debezium

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestTemporalEdges covers conversions the fixtures cannot show: the date
// +infinity sentinels (the workload only stores date '-infinity'), the
// nanosecond types (PostgreSQL has no sub-microsecond type), and ISO years
// outside 0001-9999 that java.time writes with a sign.
func TestTemporalEdges(t *testing.T) {
	for _, c := range []struct {
		days int32
		want pgtype.InfinityModifier
	}{
		{-2147472691, pgtype.NegativeInfinity}, // recorded (streamed '-infinity')
		{-2147472692, pgtype.Infinity},         // INT32_MAX+10957 wrapped
		{-622191234, pgtype.Infinity},          // snapshot, via pgjdbc
		{-625821272, pgtype.NegativeInfinity},  // snapshot, via pgjdbc
		{0, pgtype.Finite},
	} {
		if got := dateFromDays(c.days); got.InfinityModifier != c.want {
			t.Errorf("date %d: modifier %v, want %v", c.days, got.InfinityModifier, c.want)
		}
	}
	if got, err := timeOfDay(45_296_789_012_000, convTimeNano); err != nil || got.Microseconds != 45_296_789_012 {
		t.Errorf("NanoTime: got %+v %v, want 45296789012 µs", got, err)
	}
	if _, err := timeOfDay(1, convTimeNano); err == nil {
		t.Error("NanoTime with sub-microsecond digits: want an error, not a rounded value")
	}
	if got, err := timestamp(1_700_000_000_123_456_000, convTimestampNano); err != nil || !got.Time.Equal(time.UnixMicro(1_700_000_000_123_456)) {
		t.Errorf("NanoTimestamp: got %+v %v", got, err)
	}
	for in, want := range map[string]time.Time{
		"2024-02-29T13:45:30.123456Z": time.Date(2024, 2, 29, 13, 45, 30, 123456000, time.UTC),
		"2030-06-15T08:00:00+05:30":   time.Date(2030, 6, 15, 2, 30, 0, 0, time.UTC),
		"+12345-01-01T00:00:00Z":      time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC),
		"-0043-03-15T12:00:00Z":       time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), // 44 BC
		"1969-12-31T23:59:59.999999Z": time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC),
	} {
		got, err := zonedTimestamp([]byte(in))
		if err != nil || !got.Time.Equal(want) {
			t.Errorf("ZonedTimestamp %s: got %v %v, want %v", in, got.Time, err, want)
		}
	}
	// A timestamptz[]'s elements as Debezium 3.6.1 sent them (recorded by
	// the fidelity matrix): -infinity is a far-future string, which
	// PostgreSQL refuses ("timestamp out of range"). The same instant
	// under another JVM zone keeps the year.
	for in, want := range map[string]pgtype.InfinityModifier{
		"infinity":                          pgtype.Infinity,
		"-infinity":                         pgtype.NegativeInfinity,
		"+292269055-12-02T23:00:00.000000Z": pgtype.NegativeInfinity,
		"+292269055-12-03T08:00:00+09:00":   pgtype.NegativeInfinity,
	} {
		got, err := zonedTimestamp([]byte(in))
		if err != nil || !got.Valid || got.InfinityModifier != want {
			t.Errorf("ZonedTimestamp %s: got %+v %v, want infinity modifier %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"2024-02-29", "2024-02-29T13:45:30", "2024-13-01T00:00:00Z", "tomorrow"} {
		if _, err := zonedTimestamp([]byte(bad)); err == nil {
			t.Errorf("ZonedTimestamp %q: want an error", bad)
		}
	}
	for in, want := range map[string]pgtype.Interval{
		"P1Y2M3DT4H5M6.789S": {Months: 14, Days: 3, Microseconds: 14_706_789_000, Valid: true},
		"P0Y0M-3DT0H0M-1S":   {Days: -3, Microseconds: -1_000_000, Valid: true},
		"P178000000Y":        {Months: 2_136_000_000, Valid: true}, // saturates MicroDuration, exact here
		"PT-0.000001S":       {Microseconds: -1, Valid: true},
		"P2W":                {Days: 14, Valid: true},
	} {
		got, err := parseISODuration([]byte(in))
		if err != nil || got != want {
			t.Errorf("Interval %s: got %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "P", "1Y", "PT1.0000001S", "P1X", "PT1H2"} {
		if _, err := parseISODuration([]byte(bad)); err == nil {
			t.Errorf("Interval %q: want an error", bad)
		}
	}
}
