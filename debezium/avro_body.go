package debezium

import (
	"encoding/base64"
	"math"
	"strconv"

	"github.com/hamba/avro/v2"
)

// transcodeAvro appends to out the JSON text JsonConverter would have
// written for the Avro binary value r reads with schema s: numbers as
// numbers (NaN and the infinities as strings, which the JSON path reads),
// bytes and fixed as base64, records and string-keyed maps as objects. The
// JSON path then decodes it, so both wire formats share every conversion.
func transcodeAvro(out []byte, r *avro.Reader, s avro.Schema) []byte {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	switch t := s.(type) {
	case *avro.UnionSchema:
		i := r.ReadLong()
		types := t.Types()
		if i < 0 || int(i) >= len(types) {
			r.ReportError("union", "branch "+strconv.FormatInt(i, 10)+" out of range")
			return out
		}
		return transcodeAvro(out, r, types[i])
	case *avro.RecordSchema:
		out = append(out, '{')
		for i, f := range t.Fields() {
			if i > 0 {
				out = append(out, ',')
			}
			out = appendJSONString(out, f.Name())
			out = append(out, ':')
			out = transcodeAvro(out, r, f.Type())
			if r.Error != nil {
				return out
			}
		}
		return append(out, '}')
	case *avro.ArraySchema:
		out = append(out, '[')
		first := true
		r.ReadArrayCB(func(r *avro.Reader) bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = transcodeAvro(out, r, t.Items())
			return r.Error == nil
		})
		return append(out, ']')
	case *avro.MapSchema:
		out = append(out, '{')
		first := true
		r.ReadMapCB(func(r *avro.Reader, k string) bool {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = appendJSONString(out, k)
			out = append(out, ':')
			out = transcodeAvro(out, r, t.Values())
			return r.Error == nil
		})
		return append(out, '}')
	case *avro.EnumSchema:
		i := r.ReadInt()
		symbols := t.Symbols()
		if i < 0 || int(i) >= len(symbols) {
			r.ReportError("enum", "symbol "+strconv.Itoa(int(i))+" out of range")
			return out
		}
		return appendJSONString(out, symbols[i])
	case *avro.NullSchema:
		return append(out, "null"...)
	case *avro.FixedSchema:
		b := make([]byte, t.Size())
		r.Read(b)
		return appendBase64(out, b)
	case *avro.PrimitiveSchema:
		switch t.Type() {
		case avro.Int:
			return strconv.AppendInt(out, int64(r.ReadInt()), 10)
		case avro.Long:
			return strconv.AppendInt(out, r.ReadLong(), 10)
		case avro.Float:
			return appendFloat(out, float64(r.ReadFloat()), 32)
		case avro.Double:
			return appendFloat(out, r.ReadDouble(), 64)
		case avro.Boolean:
			return strconv.AppendBool(out, r.ReadBool())
		case avro.String:
			return appendJSONString(out, r.ReadString())
		case avro.Bytes:
			return appendBase64(out, r.ReadBytes())
		}
	}
	r.ReportError("transcode", "unsupported Avro schema "+s.String())
	return out
}

func appendFloat(out []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(out, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(out, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(out, `"-Infinity"`...)
	}
	return strconv.AppendFloat(out, f, 'g', -1, bits)
}

func appendBase64(out, b []byte) []byte {
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, '"')
}

// appendJSONString quotes s for JSON: strconv.AppendQuote's Go escapes
// (\x.., \U........) are not JSON, so only ", \ and control characters are
// escaped, as \" \\ and \u00XX; other bytes, valid UTF-8 or not, pass.
func appendJSONString(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, `\u00`...)
			out = append(out, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
