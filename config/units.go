package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a Go duration written as in time.ParseDuration ("100ms", "168h").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String renders d as Go does, without zero trailing units ("168h", not
// "168h0m0s"), so that a rendered file reads like the one written.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") || strings.HasSuffix(s, "h0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (d *Duration) parseScalar(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("must be a duration such as 100ms, 30s or 168h; got %q", s)
	}
	if v < 0 {
		return fmt.Errorf("must not be negative; got %s", s)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size in bytes written with an optional unit: B, KB, MB, GB
// (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type ByteSize int64

// byteUnits is ordered so that String picks the largest exact binary unit.
var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

func (b ByteSize) String() string {
	for _, u := range byteUnits[:3] {
		if b != 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

var errByteSize = errors.New("must be a size such as 16MiB, 512KiB or 1000000; got")

func (b *ByteSize) parseScalar(s string) error {
	text := strings.TrimSpace(s)
	unit := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(text, u.suffix); ok {
			text, unit = strings.TrimSpace(num), u.size
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%w %q", errByteSize, s)
	}
	if n > (1<<62)/unit {
		return fmt.Errorf("is too large: %q", s)
	}
	*b = ByteSize(n * unit)
	return nil
}
