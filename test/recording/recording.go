package recording

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"
)

// Record is one Kafka record as a consumer saw it. Key and Value are nil for
// a null key or value (a Debezium tombstone has a null value), which is not
// the same as an empty one.
type Record struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       Bytes     `json:"key"`
	Value     Bytes     `json:"value"`
	Headers   []Header  `json:"headers,omitempty"`
}

// Header is one Kafka record header.
type Header struct {
	Key   string `json:"key"`
	Value Bytes  `json:"value"`
}

// Bytes keeps raw Kafka bytes readable in a fixture: valid UTF-8 is written as
// a JSON string, anything else as {"base64": "..."}; null stays null.
type Bytes []byte

// MarshalJSON implements json.Marshaler.
func (b Bytes) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	if utf8.Valid(b) {
		return json.Marshal(string(b))
	}
	return json.Marshal(struct {
		Base64 []byte `json:"base64"`
	}{b})
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*b = Bytes(s)
		return nil
	}
	var wrapped struct {
		Base64 []byte `json:"base64"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil {
		return fmt.Errorf("recording: bytes must be a string, null or {\"base64\": ...}: %w", err)
	}
	if wrapped.Base64 == nil {
		wrapped.Base64 = []byte{}
	}
	*b = wrapped.Base64
	return nil
}

// Header returns the value of the first header named key.
func (r Record) Header(key string) (Bytes, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Write writes records as JSON lines.
func Write(w io.Writer, records []Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("recording: encode %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
	}
	return nil
}

// ReadFile reads a JSON-lines file written by Write.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var records []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		records = append(records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return records, nil
}
