package debezium

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// avroReader reads Avro's binary encoding in place. Its error is sticky: the
// first failure is kept and moves the position to the end, so every later
// read fails too and loops over counts stop; callers check err once per
// field rather than after every read.
type avroReader struct {
	buf   []byte
	pos   int
	err   error
	depth int
}

func (r *avroReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = mismatch(format, args...)
	}
	r.pos = len(r.buf)
}

// long reads a zigzag varint: Avro's int and long share the encoding.
func (r *avroReader) long() int64 {
	// One byte (-64..63: union branches, lengths, small numbers) is the
	// common case and inlines.
	if r.pos < len(r.buf) {
		if b := r.buf[r.pos]; b < 0x80 {
			r.pos++
			return int64(b>>1) ^ -int64(b&1)
		}
	}
	return r.longSlow()
}

func (r *avroReader) longSlow() int64 {
	buf := r.buf[r.pos:]
	var u uint64
	for i := 0; i < 10 && i < len(buf); i++ {
		b := buf[i]
		u |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			r.pos += i + 1
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	if len(buf) < 10 {
		r.fail("the Avro body ends inside a number")
	} else {
		r.fail("an Avro varint longer than 10 bytes")
	}
	return 0
}

// int reads an Avro int, refusing values outside int32.
func (r *avroReader) int() int32 {
	n := r.long()
	if n < math.MinInt32 || n > math.MaxInt32 {
		r.fail("Avro int %d out of range", n)
		return 0
	}
	return int32(n)
}

func (r *avroReader) float() float32 {
	if len(r.buf)-r.pos < 4 {
		r.fail("the Avro body ends inside a float")
		return 0
	}
	f := math.Float32frombits(binary.LittleEndian.Uint32(r.buf[r.pos:]))
	r.pos += 4
	return f
}

func (r *avroReader) double() float64 {
	if len(r.buf)-r.pos < 8 {
		r.fail("the Avro body ends inside a double")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.pos:]))
	r.pos += 8
	return f
}

func (r *avroReader) bool() bool {
	if r.pos >= len(r.buf) {
		r.fail("the Avro body ends inside a boolean")
		return false
	}
	b := r.buf[r.pos]
	r.pos++
	if b > 1 {
		r.fail("Avro boolean byte %d", b)
	}
	return b == 1
}

// bytes reads a length-prefixed value; the result shares the body.
func (r *avroReader) bytes() []byte {
	n := r.long()
	if r.err != nil {
		return nil
	}
	if n < 0 || n > int64(len(r.buf)-r.pos) {
		r.fail("Avro length %d beyond the body's %d bytes left", n, len(r.buf)-r.pos)
		return nil
	}
	b := r.buf[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return b
}

// fixed reads n bytes; the result shares the body.
func (r *avroReader) fixed(n int) []byte {
	if len(r.buf)-r.pos < n {
		r.fail("the Avro body ends inside a fixed of %d bytes", n)
		return nil
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b
}

// str reads a string sharing the body's bytes, as the JSON path's strings
// share the record's: Decode's callers must not write them.
func (r *avroReader) str() string {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// blockCount reads the count of the next block of an array or map; a
// negative count is followed by the block's size in bytes, which is not
// needed. Every item takes at least one byte in the schemas pgsink
// accepts, so a count beyond the bytes left is refused before anything is
// allocated for it.
func (r *avroReader) blockCount() int {
	n := r.long()
	if n < 0 {
		if n == math.MinInt64 {
			r.fail("Avro block count out of range")
			return 0
		}
		n = -n
		r.long()
	}
	if r.err != nil {
		return 0
	}
	if n > int64(len(r.buf)-r.pos) {
		r.fail("Avro block of %d items beyond the body's %d bytes left", n, len(r.buf)-r.pos)
		return 0
	}
	return int(n)
}

// enter and leave bound the nesting the reader follows in generic values,
// so a recursive schema and a hostile body cannot exhaust the stack.
func (r *avroReader) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		r.fail("Avro value nested deeper than %d", maxDepth)
		return false
	}
	return true
}

func (r *avroReader) leave() { r.depth-- }
