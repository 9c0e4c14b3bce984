package config

import (
	"testing"
	"time"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{in: "16MiB", want: 16 << 20},
		{in: "16 MiB", want: 16 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "1GiB", want: 1 << 30},
		{in: "2MB", want: 2_000_000},
		{in: "1000", want: 1000},
		{in: "10B", want: 10},
		{in: "1.5MiB", wantErr: true},
		{in: "-1KiB", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "9999999999999GiB", wantErr: true},
	}
	for _, tt := range tests {
		var got ByteSize
		err := got.parseScalar(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ByteSize(%q): error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("ByteSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for size, want := range map[ByteSize]string{16 << 20: "16MiB", 1 << 30: "1GiB", 1536: "1536B", 1000: "1000B", 0: "0B"} {
		if got := size.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(size), got, want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		168 * time.Hour: "168h", 90 * time.Minute: "1h30m", time.Minute: "1m",
		10 * time.Second: "10s", 100 * time.Millisecond: "100ms", 0: "0s",
	} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}
