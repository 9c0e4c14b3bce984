package debezium

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxDepth bounds the nesting the scanner follows, so hostile input cannot
// exhaust the stack: Debezium's deepest value (a struct in an array in a row
// in the envelope) is far below it.
const maxDepth = 512

// scanner reads JSON in place, without building a tree: the decoder knows
// from the schema what each value must be and asks for exactly that.
type scanner struct {
	data []byte
	pos  int
	// base is where data starts in the record as consumed: a payload
	// decoded apart from its schema reports its errors at the offsets of
	// the whole record.
	base int
}

// syntaxError is a JSON syntax error at a byte offset of the scanned text.
type syntaxError struct {
	Offset int
	Msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{Offset: s.base + s.pos, Msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	// Jackson writes no white space: one comparison decides the usual case.
	for s.pos < len(s.data) && s.data[s.pos] <= ' ' {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.fail("unexpected end, want %q", c)
		}
		return s.fail("found %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// null consumes a JSON null if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && s.pos+4 <= len(s.data) && string(s.data[s.pos:s.pos+4]) == "null" {
		s.pos += 4
		return true
	}
	return false
}

// end reports an error unless only white space is left.
func (s *scanner) end() error {
	if s.peek() != 0 {
		return s.fail("unexpected data after the value")
	}
	return nil
}

// objectStart consumes '{'.
func (s *scanner) objectStart() error { return s.expect('{') }

// nextKey returns the next key of an object whose '{' was consumed, with the
// ':' after it consumed too; ok is false at the closing '}'. first tells
// whether no member was read yet. The key is raw (escapes not resolved):
// Debezium's field names need no escapes, and keys that do are compared
// after unescaping by keyString.
func (s *scanner) nextKey(first bool) (key []byte, escaped, ok bool, err error) {
	c := s.peek()
	if c == '}' {
		s.pos++
		return nil, false, false, nil
	}
	if !first {
		if c != ',' {
			return nil, false, false, s.fail("want ',' or '}' in object")
		}
		s.pos++
	}
	key, escaped, err = s.rawString()
	if err != nil {
		return nil, false, false, err
	}
	if s.pos < len(s.data) && s.data[s.pos] == ':' {
		s.pos++ // the usual case, without white space
	} else if err := s.expect(':'); err != nil {
		return nil, false, false, err
	}
	return key, escaped, true, nil
}

// arrayStart consumes '['.
func (s *scanner) arrayStart() error { return s.expect('[') }

// nextElem reports whether another element follows in an array whose '['
// was consumed; it consumes the ',' between elements and the closing ']'.
func (s *scanner) nextElem(first bool) (bool, error) {
	c := s.peek()
	if c == ']' {
		s.pos++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, s.fail("want ',' or ']' in array")
		}
		s.pos++
	}
	return true, nil
}

// rawString reads a string and returns its bytes between the quotes,
// escapes unresolved; escaped says whether there are any. It finds the
// closing quote with bytes.IndexByte (vectorised) rather than byte by byte,
// and so accepts raw control characters, which strict JSON forbids and
// Jackson never writes.
func (s *scanner) rawString() (raw []byte, escaped bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.fail("want a string")
	}
	start := s.pos + 1
	// Most strings (keys, short values) end within a few bytes: a plain loop
	// beats a call to IndexByte there.
	for i := start; i < len(s.data) && i < start+16; i++ {
		switch s.data[i] {
		case '"':
			s.pos = i + 1
			return s.data[start:i], false, nil
		case '\\':
			return s.longString(start)
		}
	}
	return s.longString(start)
}

// longString finds the end of a string from start with IndexByte.
func (s *scanner) longString(start int) (raw []byte, escaped bool, err error) {
	i := start
	for {
		j := bytes.IndexByte(s.data[i:], '"')
		if j < 0 {
			s.pos = len(s.data)
			return nil, false, s.fail("unterminated string")
		}
		end := i + j
		// The quote is escaped when an odd number of backslashes precede it.
		k := end
		for k > start && s.data[k-1] == '\\' {
			k--
		}
		if (end-k)%2 == 0 {
			raw = s.data[start:end]
			s.pos = end + 1
			return raw, bytes.IndexByte(raw, '\\') >= 0, nil
		}
		i = end + 1
	}
}

// string reads a string and resolves its escapes.
func (s *scanner) string() (string, error) {
	raw, escaped, err := s.rawString()
	if err != nil {
		return "", err
	}
	if len(raw) == 0 {
		return "", nil
	}
	if !escaped {
		// No copy: the string shares the record's bytes, which the decoder
		// never writes and its callers must not write either (see Decode).
		return unsafe.String(&raw[0], len(raw)), nil
	}
	b, err := unescape(raw)
	if err != nil {
		return "", s.fail("%v", err)
	}
	if len(b) == 0 {
		return "", nil
	}
	// b is fresh and referenced nowhere else: it becomes the string.
	return unsafe.String(&b[0], len(b)), nil
}

// intern reads a string, reusing *last when it is equal, so a stream of
// events of one table does not allocate its name again and again.
func (s *scanner) intern(last *string) (string, error) {
	raw, escaped, err := s.rawString()
	if err != nil {
		return "", err
	}
	if !escaped && string(raw) == *last {
		return *last, nil
	}
	var str string
	if escaped {
		b, err := unescape(raw)
		if err != nil {
			return "", s.fail("%v", err)
		}
		str = string(b)
	} else {
		str = string(raw)
	}
	*last = str
	return str, nil
}

// stringBytes is string without the copy to a Go string, for values that
// are decoded further (base64, numbers); the result may alias the input.
func (s *scanner) stringBytes() ([]byte, error) {
	raw, escaped, err := s.rawString()
	if err != nil || !escaped {
		return raw, err
	}
	b, err := unescape(raw)
	if err != nil {
		return nil, s.fail("%v", err)
	}
	return b, nil
}

// unescape resolves JSON escapes. A \uXXXX surrogate pair (Jackson writes
// characters outside the BMP that way) becomes one UTF-8 character; a lone
// surrogate becomes U+FFFD, as encoding/json does.
func unescape(raw []byte) ([]byte, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		// Copy the run up to the next escape in one go.
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return append(out, raw[i:]...), nil
		}
		out = append(out, raw[i:i+j]...)
		i += j
		if i+1 >= len(raw) {
			return nil, errors.New("truncated escape")
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			out = append(out, raw[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return nil, errors.New("bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, ok = hex4(raw[i+2:])
				}
				if ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, fmt.Errorf("bad escape \\%c", raw[i+1])
		}
		i += 2
	}
	return out, nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.pos
	i := s.pos
	if i < len(s.data) && s.data[i] == '-' {
		i++
	}
	digits := i
	for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
		i++
	}
	if i == digits {
		return nil, s.fail("want a number")
	}
	if i < len(s.data) && s.data[i] == '.' {
		i++
		d := i
		for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return nil, s.fail("want digits after '.'")
		}
	}
	if i < len(s.data) && (s.data[i] == 'e' || s.data[i] == 'E') {
		i++
		if i < len(s.data) && (s.data[i] == '+' || s.data[i] == '-') {
			i++
		}
		d := i
		for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' {
			i++
		}
		if i == d {
			s.pos = i
			return nil, s.fail("want digits in exponent")
		}
	}
	s.pos = i
	return s.data[start:i], nil
}

// int reads an integer number that fits bits, in one pass over its
// digits: integers are most of what a row holds.
func (s *scanner) int(bits int) (int64, error) {
	s.ws()
	i := s.pos
	neg := i < len(s.data) && s.data[i] == '-'
	if neg {
		i++
	}
	digits := i
	var u uint64
	for i < len(s.data) && s.data[i] >= '0' && s.data[i] <= '9' && i-digits < 19 {
		u = u*10 + uint64(s.data[i]-'0')
		i++
	}
	if i == digits {
		return 0, s.fail("want an integer")
	}
	if i < len(s.data) {
		switch c := s.data[i]; {
		case c >= '0' && c <= '9':
			s.pos = i
			return 0, s.fail("integer too long for %d bits", bits)
		case c == '.' || c == 'e' || c == 'E':
			s.pos = i
			return 0, s.fail("want an integer, found a fraction or exponent")
		}
	}
	limit := uint64(1) << (bits - 1)
	if (!neg && u >= limit) || (neg && u > limit) {
		return 0, s.fail("%s is out of range for %d bits", s.data[s.pos:i], bits)
	}
	s.pos = i
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// parseInt parses a decimal integer without allocating.
func parseInt(text []byte, bits int) (int64, error) {
	neg := len(text) > 0 && text[0] == '-'
	digits := text
	if neg {
		digits = text[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		// string(text): a copy, so text does not escape through the error.
		return 0, fmt.Errorf("%q is not an integer of %d bits", string(text), bits)
	}
	var u uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not an integer", string(text))
		}
		u = u*10 + uint64(c-'0')
	}
	limit := uint64(1) << (bits - 1)
	if (!neg && u >= limit) || (neg && u > limit) {
		return 0, fmt.Errorf("%s is out of range for %d bits", string(text), bits)
	}
	if neg {
		return -int64(u), nil
	}
	return int64(u), nil
}

// float reads a number, or the strings Jackson writes for non-finite
// floats ("NaN", "Infinity", "-Infinity").
func (s *scanner) float(bits int) (float64, error) {
	if s.peek() == '"' {
		raw, _, err := s.rawString()
		if err != nil {
			return 0, err
		}
		switch string(raw) {
		case "NaN", "Infinity", "-Infinity":
			f, _ := strconv.ParseFloat(string(raw), bits)
			return f, nil
		}
		return 0, s.fail("string %q is not a number", raw)
	}
	text, err := s.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(text), bits)
	if err != nil {
		return 0, s.fail("%v", err)
	}
	return f, nil
}

func (s *scanner) bool() (bool, error) {
	s.ws()
	if s.pos+4 <= len(s.data) && string(s.data[s.pos:s.pos+4]) == "true" {
		s.pos += 4
		return true, nil
	}
	if s.pos+5 <= len(s.data) && string(s.data[s.pos:s.pos+5]) == "false" {
		s.pos += 5
		return false, nil
	}
	return false, s.fail("want true or false")
}

// skip reads any value and returns its bytes, validating it.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	start := s.pos
	if err := s.skipValue(0); err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.fail("nested deeper than %d", maxDepth)
	}
	switch c := s.peek(); c {
	case '{':
		s.pos++
		for first := true; ; first = false {
			_, _, ok, err := s.nextKey(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case '[':
		s.pos++
		for first := true; ; first = false {
			ok, err := s.nextElem(first)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case '"':
		_, _, err := s.rawString()
		return err
	case 't', 'f':
		_, err := s.bool()
		return err
	case 'n':
		if s.null() {
			return nil
		}
		return s.fail("want null")
	case 0:
		return s.fail("unexpected end of input")
	default:
		_, err := s.number()
		return err
	}
}
