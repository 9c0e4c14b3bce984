package debezium

import "testing"

func BenchmarkOne(b *testing.B) {
	fx := loadFixtures(b)
	for _, f := range fx {
		if f.name != "identity_default" {
			continue
		}
		rec := toRecord(f.records[23])
		d := NewDecoder(f.options())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	}
}
