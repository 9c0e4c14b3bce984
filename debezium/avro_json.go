package debezium

import "strconv"

// appendAvroJSON appends the JSON text JsonConverter would have written for
// the value of n at r (as transcodeAvro does): the form in which a nested
// struct or map column is kept.
func appendAvroJSON(out []byte, r *avroReader, n *avroNode) []byte {
	if !r.enter() {
		return out
	}
	defer r.leave()
	switch n.kind {
	case avroNull:
		return append(out, "null"...)
	case avroBool:
		return strconv.AppendBool(out, r.bool())
	case avroInt, avroLong:
		return strconv.AppendInt(out, r.long(), 10)
	case avroFloat:
		return appendFloat(out, float64(r.float()), 32)
	case avroDouble:
		return appendFloat(out, r.double(), 64)
	case avroString:
		return appendJSONString(out, r.str())
	case avroBytes:
		return appendBase64(out, r.bytes())
	case avroFixed:
		return appendBase64(out, r.fixed(n.size))
	case avroEnum:
		return appendJSONString(out, avroSymbol(r, n))
	case avroUnion:
		if b := unionBranch(r, n); b != nil {
			return appendAvroJSON(out, r, b)
		}
		return out
	case avroRecord:
		out = append(out, '{')
		for i, f := range n.fields {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendJSONString(out, f.name)
			out = append(out, ':')
			out = appendAvroJSON(out, r, f.node)
		}
		return append(out, '}')
	case avroArray:
		out = append(out, '[')
		first := true
		for c := r.blockCount(); c > 0; c = r.blockCount() {
			for ; c > 0 && r.err == nil; c-- {
				if !first {
					out = append(out, ',')
				}
				first = false
				out = appendAvroJSON(out, r, n.items)
			}
		}
		return append(out, ']')
	case avroMap:
		out = append(out, '{')
		first := true
		for c := r.blockCount(); c > 0; c = r.blockCount() {
			for ; c > 0 && r.err == nil; c-- {
				if !first {
					out = append(out, ',')
				}
				first = false
				out = appendJSONString(out, r.str())
				out = append(out, ':')
				out = appendAvroJSON(out, r, n.values)
			}
		}
		return append(out, '}')
	}
	r.fail("unsupported Avro type")
	return out
}
