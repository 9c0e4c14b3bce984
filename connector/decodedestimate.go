package connector

import (
	"math"
	"sync/atomic"
)

// decodedEstimate predicts what a fetched record will cost once decoded,
// from the size of its key and value, so that the poll loop can charge it
// to apply.max_buffered_bytes when it dispatches the record rather than
// when the worker decodes it. Charged only at decode, the decoded sizes of
// records queued while the budget was spent came on top of it: the budget
// then bounded the wire bytes, and a format that decodes into several
// times its bytes (Avro) overshot it by that many times the queues.
//
// The prediction is the ratio of two moving averages over the last few
// records the worker decoded: of their decoded bytes and of their wire
// bytes. The worker corrects each record's charge to its decoded size when
// it takes it, so a wrong prediction costs accuracy for the records queued
// meanwhile, never a byte of the account.
//
// A ratio of averages, not an average of each record's ratio: a record of
// a few bytes decodes into many times them (an Item's fixed size alone is
// hundreds of bytes), and its ratio averaged in would have multiplied the
// prediction for the records after it, large ones included, by as much.
// Weighed by their bytes, small records move the prediction little.
type decodedEstimate struct {
	// wire and decoded are float64 bits (math.Float64bits) of the moving
	// averages; wire is 0 in a zero decodedEstimate, which predicts 0.
	wire, decoded atomic.Uint64
}

// seedBytes is the weight of newDecodedEstimate's starting ratio of 1: one
// record of that size decoding into as many bytes.
const seedBytes = 1024

// newDecodedEstimate starts from seed's averages if it has seen a record (a
// partition of a busy instance decodes like its others), else from 1.
func newDecodedEstimate(seed *decodedEstimate) *decodedEstimate {
	e := &decodedEstimate{}
	w, d := math.Float64bits(seedBytes), math.Float64bits(seedBytes)
	if seed != nil && math.Float64frombits(seed.wire.Load()) > 0 {
		w, d = seed.wire.Load(), seed.decoded.Load()
	}
	e.wire.Store(w)
	e.decoded.Store(d)
	return e
}

// of is the decoded bytes predicted for a record of wire bytes.
func (e *decodedEstimate) of(wire int64) int64 {
	w := math.Float64frombits(e.wire.Load())
	if w <= 0 {
		return 0
	}
	return int64(float64(wire) * math.Float64frombits(e.decoded.Load()) / w)
}

// observe moves the averages towards a record's measured sizes. A
// partition's is moved by its worker alone; the instance's seed by every
// worker, where an update lost to a concurrent one costs nothing but that
// sample.
func (e *decodedEstimate) observe(wire, decoded int64) {
	if e == nil || wire <= 0 {
		return
	}
	move := func(avg *atomic.Uint64, sample int64) {
		old := math.Float64frombits(avg.Load())
		avg.Store(math.Float64bits(old + (float64(sample)-old)/8))
	}
	move(&e.wire, wire)
	move(&e.decoded, decoded)
}
