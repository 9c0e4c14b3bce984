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
