package dedup

import (
	"encoding/json"
	"testing"
)

// Header JSON keeps text readable and any bytes exact, and reads the rows
// written before base64 existed.
func TestHeaderJSONRoundTrip(t *testing.T) {
	for _, h := range []Header{{Key: "k", Value: "text ü"}, {Key: "apicurio.value.globalId", Value: "\x00\x00\x00\x00\x00\x00\x00\x07"},
		{Key: "\x00k", Value: "\xff\xfe"}, {Key: "empty", Value: ""}} {
		data, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back Header
		if err := json.Unmarshal(data, &back); err != nil || back != h {
			t.Fatalf("%q → %s → %q, %v", h, data, back, err)
		}
	}
	var old Header
	if err := json.Unmarshal([]byte(`{"key":"k","value":"v"}`), &old); err != nil || old != (Header{Key: "k", Value: "v"}) {
		t.Fatalf("stored form: %q, %v", old, err)
	}
	if data, _ := json.Marshal(Header{Key: "k", Value: "v"}); string(data) != `{"key":"k","value":"v"}` {
		t.Fatalf("text header written as %s", data)
	}
}
