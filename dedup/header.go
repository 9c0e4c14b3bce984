package dedup

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// headerJSON is a Header as the dead-letter table's jsonb column stores it.
// A header's bytes need not be text (Apicurio's AvroConverter writes schema
// ids as 8 big-endian bytes): jsonb refuses a NUL (\u0000) and JSON text
// cannot carry invalid UTF-8, so such a part is stored in base64 under a
// key of its own, and read back byte for byte.
type headerJSON struct {
	Key         *string `json:"key,omitempty"`
	KeyBase64   *string `json:"key_base64,omitempty"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 *string `json:"value_base64,omitempty"`
}

// MarshalJSON writes text parts as they are, others in base64.
func (h Header) MarshalJSON() ([]byte, error) {
	var out headerJSON
	out.Key, out.KeyBase64 = jsonPart(h.Key)
	out.Value, out.ValueBase64 = jsonPart(h.Value)
	return json.Marshal(out)
}

// UnmarshalJSON reads either form of each part.
func (h *Header) UnmarshalJSON(data []byte) error {
	var in headerJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	var err error
	if h.Key, err = fromJSONPart(in.Key, in.KeyBase64); err != nil {
		return err
	}
	h.Value, err = fromJSONPart(in.Value, in.ValueBase64)
	return err
}

func jsonPart(s string) (text, b64 *string) {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return &s, nil
	}
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	return nil, &enc
}

func fromJSONPart(text, b64 *string) (string, error) {
	switch {
	case b64 != nil:
		raw, err := base64.StdEncoding.DecodeString(*b64)
		return string(raw), err
	case text != nil:
		return *text, nil
	}
	return "", nil
}
