package debezium

import (
	"strconv"
	"testing"
)

// TestInt32ArrayBounds decodes int[] elements at the edges of int32 and of
// the eight-byte fast path.
func TestInt32ArrayBounds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int32
		ok   bool
	}{
		{"2147483647,-2147483648,0,-0,7]", []int32{2147483647, -2147483648, 0, 0, 7}, true},
		{"12345678,123456789,1234567890]", []int32{12345678, 123456789, 1234567890}, true},
		{"2147483648]", nil, false},
		{"-2147483649]", nil, false},
		{"99999999999999999999999]", nil, false},
		{"1,,2]", nil, false},
		{"1,2", nil, false},
		{"-]", nil, false},
	} {
		s := &scanner{data: []byte(tc.in)}
		got, ok := int32Array(s)
		if ok != tc.ok {
			t.Fatalf("%q: ok %v, want %v", tc.in, ok, tc.ok)
		}
		if !ok {
			continue
		}
		arr := got.([]int32)
		if len(arr) != len(tc.want) {
			t.Fatalf("%q: %v", tc.in, arr)
		}
		for i := range arr {
			if arr[i] != tc.want[i] {
				t.Fatalf("%q: element %d = %d, want %d (%s)", tc.in, i, arr[i], tc.want[i], strconv.Itoa(int(tc.want[i])))
			}
		}
	}
}
