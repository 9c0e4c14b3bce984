package debezium

import (
	"errors"
	"testing"
)

// FuzzDecode feeds mutated fixture records to every decoder configuration:
// decoding may fail, but only with a *DecodeError, and never panic.
func FuzzDecode(f *testing.F) {
	fixtures := loadFixtures(f)
	for _, fx := range fixtures {
		for _, r := range fx.records {
			if len(r.Value) > 64<<10 {
				continue // keep the corpus small enough to mutate quickly
			}
			oldKey, _ := r.Header("__debezium.oldkey")
			f.Add(fx.name, r.Topic, []byte(r.Key), []byte(r.Value), []byte(oldKey))
		}
	}
	decoders := map[string]*Decoder{}
	for _, fx := range fixtures {
		decoders[fx.name] = NewDecoder(fx.options())
	}
	f.Fuzz(func(t *testing.T, scenario, topic string, key, value, oldKey []byte) {
		d := decoders[scenario]
		if d == nil {
			return
		}
		rec := Record{Topic: topic, Partition: 1, Offset: 42, Key: key, Value: value}
		if oldKey != nil {
			rec.Headers = []Header{{Key: "__debezium.oldkey", Value: oldKey}}
		}
		_, err := d.Decode(rec)
		var de *DecodeError
		if err != nil && (!errors.As(err, &de) || de.Topic != topic || de.Offset != 42 || de.Partition != 1) {
			t.Fatalf("error %v is not a *DecodeError naming the record", err)
		}
	})
}
