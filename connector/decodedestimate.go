package connector

import "sync/atomic"

// decodedEstimate predicts what a fetched record will cost once decoded,
// from the size of its key and value, so that the poll loop can charge it
// to apply.max_buffered_bytes when it dispatches the record rather than
// when the worker decodes it. Charged only at decode, the decoded sizes of
// records queued while the budget was spent came on top of it: the budget
// then bounded the wire bytes, and a format that decodes into several
// times its bytes (Avro) overshot it by that many times the queues.
//
// The prediction is a ratio of decoded to wire bytes, in 1/1024ths, moved
// by every record the worker decodes (a moving average over the last few
// records): the worker corrects each record's charge to its decoded size
// when it takes it, so a wrong prediction costs accuracy for the records
// queued meanwhile, never a byte of the account.
type decodedEstimate struct {
	ratio atomic.Int64
}

// ratioOne is a ratio of 1 in decodedEstimate's fixed point.
const ratioOne = 1024

// newDecodedEstimate starts from seed's ratio if it has seen a record (a
// partition of a busy instance decodes like its others), else from 1.
func newDecodedEstimate(seed *decodedEstimate) *decodedEstimate {
	e := &decodedEstimate{}
	r := int64(ratioOne)
	if seed != nil {
		if s := seed.ratio.Load(); s > 0 {
			r = s
		}
	}
	e.ratio.Store(r)
	return e
}

// of is the decoded bytes predicted for a record of wire bytes.
func (e *decodedEstimate) of(wire int64) int64 { return wire * e.ratio.Load() / ratioOne }

// observe moves the ratio towards a record's measured one. A partition's
// is moved by its worker alone; the instance's seed by every worker, where
// an update lost to a concurrent one costs nothing but that sample.
func (e *decodedEstimate) observe(wire, decoded int64) {
	if e == nil || wire <= 0 {
		return
	}
	measured := decoded * ratioOne / wire
	old := e.ratio.Load()
	e.ratio.Store(old + (measured-old)/8)
}
