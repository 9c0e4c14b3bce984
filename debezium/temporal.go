package debezium

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Debezium turns PostgreSQL's infinities into sentinel numbers rather than
// nulls. Timestamps: pgjdbc's infinity constants (ms), in the unit of the
// logical type; the fixtures record the micro ones (timestamp 'infinity' and
// '-infinity') and the milli +infinity (timestamp(3)).
const (
	microInfinity    = 9223372036825200000
	microNegInfinity = -9223372036832400000
	milliInfinity    = 9223372036825200
	milliNegInfinity = -9223372036832400
)

// Date infinities. While streaming, PostgreSQL's DATEVAL_NOBEGIN/NOEND
// (INT32_MIN/MAX days from 2000-01-01) are shifted by the 10957 days to
// 1970-01-01 in 32-bit arithmetic, so +infinity wraps: -infinity is
// recorded in the fixtures as -2147472691. Snapshot rows go through pgjdbc's
// infinity dates instead; those two values are reported by other Debezium
// users, not recorded here. All four lie far outside PostgreSQL's date
// range, so no real date is mistaken for them.
const (
	dateStreamInfinity      = int32(2147483647 + 10957 - 1<<32)
	dateStreamNegInfinity   = int32(-2147483648 + 10957)
	dateSnapshotInfinity    = int32(-622191234)
	dateSnapshotNegInfinity = int32(-625821272)
)

func dateFromDays(days int32) pgtype.Date {
	switch days {
	case dateStreamInfinity, dateSnapshotInfinity:
		return pgtype.Date{InfinityModifier: pgtype.Infinity, Valid: true}
	case dateStreamNegInfinity, dateSnapshotNegInfinity:
		return pgtype.Date{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return pgtype.Date{Time: time.Unix(int64(days)*86400, 0).UTC(), Valid: true}
}

const microsPerDay = 86_400_000_000

// timeOfDay converts Time (ms), MicroTime or NanoTime. 24:00:00 is a valid
// PostgreSQL time and arrives as a full day.
func timeOfDay(n int64, c conv) (pgtype.Time, error) {
	us := n
	switch c {
	case convTimeMilli:
		us = n * 1000
	case convTimeNano:
		if n%1000 != 0 {
			return pgtype.Time{}, fmt.Errorf("NanoTime %d has sub-microsecond digits PostgreSQL cannot store", n)
		}
		us = n / 1000
	}
	if us < 0 || us > microsPerDay {
		return pgtype.Time{}, fmt.Errorf("time of day %d µs out of range", us)
	}
	return pgtype.Time{Microseconds: us, Valid: true}, nil
}

// timestamp converts Timestamp (ms), MicroTimestamp or NanoTimestamp, wall
// clock time without a zone, kept in UTC as pgx expects.
func timestamp(n int64, c conv) (pgtype.Timestamp, error) {
	switch c {
	case convTimestampMilli:
		switch n {
		case milliInfinity:
			return pgtype.Timestamp{InfinityModifier: pgtype.Infinity, Valid: true}, nil
		case milliNegInfinity:
			return pgtype.Timestamp{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
		}
		return pgtype.Timestamp{Time: time.UnixMilli(n).UTC(), Valid: true}, nil
	case convTimestampNano:
		if n%1000 != 0 {
			return pgtype.Timestamp{}, fmt.Errorf("NanoTimestamp %d has sub-microsecond digits PostgreSQL cannot store", n)
		}
		return pgtype.Timestamp{Time: time.Unix(0, n).UTC(), Valid: true}, nil
	}
	switch n {
	case microInfinity:
		return pgtype.Timestamp{InfinityModifier: pgtype.Infinity, Valid: true}, nil
	case microNegInfinity:
		return pgtype.Timestamp{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	return pgtype.Timestamp{Time: time.UnixMicro(n).UTC(), Valid: true}, nil
}

// zonedTimestamp parses ZonedTimestamp: ISO-8601 with an offset, written by
// java.time, so years beyond 9999 carry a '+' and BC years are negative
// (year 0 is 1 BC); or "infinity"/"-infinity".
func zonedTimestamp(b []byte) (pgtype.Timestamptz, error) {
	switch string(b) {
	case "infinity":
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}, nil
	case "-infinity":
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	t, err := parseISO(b)
	if err != nil {
		return pgtype.Timestamptz{}, err
	}
	if t.Year() == zonedArrayNegInfinityYear {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, nil
	}
	return pgtype.Timestamptz{Time: t, Valid: true}, nil
}

// zonedArrayNegInfinityYear is the year of the string Debezium sends for
// -infinity inside a timestamptz[] ("+292269055-12-02T23:00:00.000000Z",
// recorded; a scalar arrives as "-infinity", and +infinity in an array as
// "infinity"): pgjdbc's -infinity instant, read through a calendar that
// drops its era, so the year comes out positive. The time of day follows
// the Connect JVM's zone, the year does not. PostgreSQL's timestamps end in
// 294276 AD, so no real value has this year.
const zonedArrayNegInfinityYear = 292269055

var errISO = errors.New("not an ISO-8601 timestamp with offset")

// parseISO parses [±]YYYY[YY]-MM-DDTHH:MM[:SS[.fffffffff]](Z|±HH:MM[:SS]).
func parseISO(b []byte) (time.Time, error) {
	p := 0
	num := func(min, max int) (int, bool) {
		start, n := p, 0
		for p < len(b) && p-start < max && b[p] >= '0' && b[p] <= '9' {
			n = n*10 + int(b[p]-'0')
			p++
		}
		return n, p-start >= min
	}
	lit := func(c byte) bool {
		if p < len(b) && b[p] == c {
			p++
			return true
		}
		return false
	}
	sign := 1
	if lit('-') {
		sign = -1
	} else {
		lit('+')
	}
	year, ok1 := num(4, 9)
	ok2 := lit('-')
	month, ok3 := num(2, 2)
	ok4 := lit('-')
	day, ok5 := num(2, 2)
	ok6 := lit('T')
	hour, ok7 := num(2, 2)
	ok8 := lit(':')
	minute, ok9 := num(2, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
		return time.Time{}, errISO
	}
	var sec, nsec int
	if lit(':') {
		var ok bool
		if sec, ok = num(2, 2); !ok {
			return time.Time{}, errISO
		}
		if lit('.') {
			start := p
			frac, ok := num(1, 9)
			if !ok {
				return time.Time{}, errISO
			}
			for i := p - start; i < 9; i++ {
				frac *= 10
			}
			nsec = frac
		}
	}
	offset := 0
	switch {
	case lit('Z'):
	case p < len(b) && (b[p] == '+' || b[p] == '-'):
		osign := 1
		if b[p] == '-' {
			osign = -1
		}
		p++
		oh, ok1 := num(2, 2)
		ok2 := lit(':')
		om, ok3 := num(2, 2)
		if !(ok1 && ok2 && ok3) {
			return time.Time{}, errISO
		}
		os := 0
		if lit(':') {
			var ok bool
			if os, ok = num(2, 2); !ok {
				return time.Time{}, errISO
			}
		}
		offset = osign * (oh*3600 + om*60 + os)
	default:
		return time.Time{}, errISO
	}
	if p != len(b) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || sec > 60 {
		return time.Time{}, errISO
	}
	t := time.Date(sign*year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), nil
}

// secondsToMicros reads "[-]S[.ffffff]" exactly.
func secondsToMicros(b []byte) (int64, error) {
	whole, frac, _ := strings.Cut(string(b), ".")
	neg := strings.HasPrefix(whole, "-")
	if len(frac) > 6 {
		return 0, errors.New("sub-microsecond seconds")
	}
	w, err := parseInt([]byte(strings.TrimPrefix(strings.TrimPrefix(whole, "-"), "+")), 64)
	if err != nil || w > 1<<62/1_000_000 {
		return 0, errors.New("bad seconds")
	}
	us := w * 1_000_000
	if frac != "" {
		f, err := parseInt([]byte(frac+strings.Repeat("0", 6-len(frac))), 64)
		if err != nil {
			return 0, errors.New("bad fraction of a second")
		}
		us += f
	}
	if neg {
		us = -us
	}
	return us, nil
}
