package debezium

import (
	"fmt"
	"math"

	"github.com/jackc/pgx/v5/pgtype"
)

// ISOInterval is an interval sent as io.debezium.time.Interval
// (interval.handling.mode=string): its exact months, days and microseconds,
// and the ISO-8601 text Debezium sent. pgx writes the interval into an
// interval column (IntervalValuer) and the text, unchanged, into a text
// column (TextValuer), so neither target type rewrites what the source
// held.
type ISOInterval struct {
	pgtype.Interval
	Text string
}

// TextValue is the duration as Debezium wrote it.
func (v ISOInterval) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: v.Text, Valid: true}, nil
}

func isoInterval(b []byte) (ISOInterval, error) {
	iv, err := parseISODuration(b)
	if err != nil {
		return ISOInterval{}, err
	}
	return ISOInterval{Interval: iv, Text: string(b)}, nil
}

// parseISODuration reads io.debezium.time.Interval, the ISO-8601 duration
// interval.handling.mode=string sends ("P1Y2M3DT4H5M6.789S", components
// signed independently, as PostgreSQL's are: "P-1Y-2M3DT-4H-5M-6.000001S").
// Unlike MicroDuration it keeps months, days and time apart, so the
// interval is exact. A sum beyond what PostgreSQL's interval holds (int32
// months and days, int64 microseconds) is an error, never wrapped.
func parseISODuration(b []byte) (pgtype.Interval, error) {
	if len(b) < 2 || b[0] != 'P' {
		return pgtype.Interval{}, fmt.Errorf("interval %q is not an ISO-8601 duration", b)
	}
	var months, days, micros int64
	inTime, timeParts := false, 0
	for i := 1; i < len(b); {
		if b[i] == 'T' && !inTime {
			inTime = true
			i++
			continue
		}
		start := i
		if b[i] == '-' || b[i] == '+' {
			i++
		}
		for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '.') {
			i++
		}
		if i == start || i >= len(b) {
			return pgtype.Interval{}, fmt.Errorf("interval %q: bad component", b)
		}
		num, unit := b[start:i], b[i]
		i++
		if inTime {
			timeParts++
		}
		var total *int64
		var n, per int64
		var err error
		if unit == 'S' && inTime {
			total, per = &micros, 1
			n, err = secondsToMicros(num)
		} else {
			n, err = parseInt(trimSign(num), 64)
			switch {
			case !inTime && unit == 'Y':
				total, per = &months, 12
			case !inTime && unit == 'M':
				total, per = &months, 1
			case !inTime && unit == 'W':
				total, per = &days, 7
			case !inTime && unit == 'D':
				total, per = &days, 1
			case inTime && unit == 'H':
				total, per = &micros, 3600_000_000
			case inTime && unit == 'M':
				total, per = &micros, 60_000_000
			default:
				return pgtype.Interval{}, fmt.Errorf("interval %q: unit %q", b, unit)
			}
		}
		if err != nil {
			return pgtype.Interval{}, fmt.Errorf("interval %q: %w", b, err)
		}
		if *total, err = addProduct(*total, n, per); err != nil {
			return pgtype.Interval{}, fmt.Errorf("interval %q: %w", b, err)
		}
	}
	if inTime && timeParts == 0 {
		return pgtype.Interval{}, fmt.Errorf("interval %q: T without a time", b)
	}
	if months < math.MinInt32 || months > math.MaxInt32 || days < math.MinInt32 || days > math.MaxInt32 {
		return pgtype.Interval{}, fmt.Errorf("interval %q: months or days out of range", b)
	}
	return pgtype.Interval{Months: int32(months), Days: int32(days), Microseconds: micros, Valid: true}, nil
}

// trimSign drops a leading '+', which parseInt does not take.
func trimSign(b []byte) []byte {
	if len(b) > 0 && b[0] == '+' {
		return b[1:]
	}
	return b
}

// addProduct returns total + n*per, or an error where int64 overflows.
func addProduct(total, n, per int64) (int64, error) {
	if per != 1 && (n > math.MaxInt64/per || n < math.MinInt64/per) {
		return 0, fmt.Errorf("%d × %d out of range", n, per)
	}
	sum := total + n*per
	if (n*per > 0 && sum < total) || (n*per < 0 && sum > total) {
		return 0, fmt.Errorf("sum out of range")
	}
	return sum, nil
}
