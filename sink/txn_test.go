package sink

import (
	"math/bits"
	"slices"
	"testing"
)

// Small stages are written in powers of two, largest first, so a table
// needs at most 7 prepared INSERT … VALUES per connection.
func TestValuesChunks(t *testing.T) {
	if got := valuesChunks(37); !slices.Equal(got, []int{32, 4, 1}) {
		t.Errorf("valuesChunks(37) = %v, want [32 4 1]", got)
	}
	sizes := map[int]bool{}
	for n := 1; n <= valuesRows; n++ {
		chunks := valuesChunks(n)
		sum := 0
		for i, c := range chunks {
			sum += c
			sizes[c] = true
			if bits.OnesCount(uint(c)) != 1 || (i > 0 && c >= chunks[i-1]) {
				t.Errorf("valuesChunks(%d) = %v: not decreasing powers of two", n, chunks)
			}
		}
		if sum != n {
			t.Errorf("valuesChunks(%d) = %v: sums to %d", n, chunks, sum)
		}
	}
	if len(sizes) != 7 {
		t.Errorf("%d distinct statement sizes for 1..%d rows, want 7", len(sizes), valuesRows)
	}
}

func TestTypedSlice(t *testing.T) {
	if got, ok := typedSlice([]any{int64(1), int64(2)}).([]int64); !ok || len(got) != 2 || got[1] != 2 {
		t.Errorf("int64 keys: %#v", got)
	}
	if got, ok := typedSlice([]any{"a", "b"}).([]string); !ok || got[0] != "a" {
		t.Errorf("string keys: %#v", got)
	}
	mixed := []any{int64(1), "b"}
	if got, ok := typedSlice(mixed).([]any); !ok || len(got) != 2 {
		t.Errorf("mixed keys: %#v, want them as they are", got)
	}
	if got, ok := typedSlice([]any{int32(1)}).([]any); !ok || got[0] != int32(1) {
		t.Errorf("int32 keys: %#v, want them as they are", got)
	}
}
