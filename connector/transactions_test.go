package connector

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/txapply"
)

// TestMarkerRouter routes the transaction topic's records recorded from
// Debezium: an END is an item for the resolver with its counts, a BEGIN
// writes nothing, and a record that is no marker stops the resolver rather
// than being passed over.
func TestMarkerRouter(t *testing.T) {
	records, err := recording.ReadFile(filepath.Join("..", "testdata", "debezium", "shipped", "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := &markerRouter{}
	var begins, ends int
	for _, r := range records {
		if r.Topic != "fixture_shipped.transaction" {
			continue
		}
		rec := debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
		it, ok, err := m.Item(context.Background(), nil, rec)
		if err != nil {
			t.Fatalf("marker at offset %d: %v", r.Offset, err)
		}
		if !ok {
			begins++
			continue
		}
		ends++
		if mark := it.Change.TxMark; mark == nil || mark.Status != "END" || mark.EventCount == 0 || len(mark.DataCollections) == 0 || it.Record.Offset != r.Offset {
			t.Errorf("END at offset %d routed as %+v", r.Offset, it)
		}
	}
	if begins == 0 || begins != ends {
		t.Errorf("%d BEGIN and %d END markers routed; want as many of each, and some", begins, ends)
	}
	_, _, err = m.Item(context.Background(), nil, debezium.Record{Topic: "x.transaction", Offset: 7, Value: []byte(`{"op":"c"}`)})
	var marker *txapply.MarkerError
	if !errors.As(err, &marker) || marker.Offset != 7 {
		t.Fatalf("a record that is no marker: %v, want a MarkerError at offset 7", err)
	}
	_, _, err = m.Item(context.Background(), nil, debezium.Record{Topic: "x.transaction", Offset: 8, Value: []byte{0, 0, 0, 0, 1, 2, 'i', 'd'}})
	if !errors.As(err, &marker) || marker.Offset != 8 || !errors.Is(err, errAvroMarker) {
		t.Fatalf("a marker in Avro: %v, want a MarkerError at offset 8 saying markers are read as JSON only", err)
	}
}
