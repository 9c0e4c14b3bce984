package connector

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/pgsink/pgsink/config"
	"github.com/pgsink/pgsink/debezium"
	"github.com/pgsink/pgsink/test/recording"
	"github.com/pgsink/pgsink/txapply"
)

// fixtureMarkers returns the transaction topic's records of a recorded
// fixture (testdata/debezium/<name>) and the registry's schemas of its
// Avro ids (schemas.json; none for a JSON fixture).
func fixtureMarkers(t *testing.T, name string) ([]debezium.Record, fixtureRegistry) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "debezium", name)
	records, err := recording.ReadFile(filepath.Join(dir, "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []debezium.Record
	for _, r := range records {
		if r.Topic == "fixture_"+name+".transaction" {
			out = append(out, debezium.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
		}
	}
	if len(out) == 0 {
		t.Fatalf("fixture %s holds no record of its transaction topic", name)
	}
	schemas := fixtureRegistry{}
	if data, err := os.ReadFile(filepath.Join(dir, "schemas.json")); err == nil {
		if err := json.Unmarshal(data, &schemas); err != nil {
			t.Fatalf("%s/schemas.json: %v", name, err)
		}
	}
	return out, schemas
}

// fixtureRegistry is a schema registry holding a fixture's schemas.json:
// schema text by decimal id.
type fixtureRegistry map[string]string

func (r fixtureRegistry) Schema(id uint32) (string, error) {
	if text, ok := r[strconv.FormatUint(uint64(id), 10)]; ok {
		return text, nil
	}
	return "", debezium.ErrUnknownSchemaID
}

// outageRegistry is a registry that cannot be reached while down is set,
// as the schema registry client reports it; calls counts every request.
type outageRegistry struct {
	schemas fixtureRegistry
	down    atomic.Bool
	calls   chan uint32
}

func (r *outageRegistry) Schema(id uint32) (string, error) {
	select {
	case r.calls <- id:
	default:
	}
	if r.down.Load() {
		return "", &debezium.SchemaUnavailableError{ID: id, Err: errors.New("connection refused")}
	}
	return r.schemas.Schema(id)
}

// routeMarkers routes every record through m and returns each END's
// counts as text, in order, and the number of BEGIN markers.
func routeMarkers(t *testing.T, m *markerRouter, records []debezium.Record) (ends []string, begins int) {
	t.Helper()
	for _, rec := range records {
		it, ok, err := m.Item(context.Background(), nil, rec)
		if err != nil {
			t.Fatalf("marker at offset %d: %v", rec.Offset, err)
		}
		if !ok {
			begins++
			continue
		}
		mark := it.Change.TxMark
		if mark == nil || mark.Status != "END" || mark.EventCount == 0 || len(mark.DataCollections) == 0 || it.Record.Offset != rec.Offset || mark.TxID == 0 {
			t.Fatalf("END at offset %d routed as %+v", rec.Offset, it)
		}
		counts := make([]string, 0, len(mark.DataCollections))
		for _, c := range mark.DataCollections {
			counts = append(counts, fmt.Sprintf("%s %d", c.Collection(), c.EventCount))
		}
		ends = append(ends, fmt.Sprintf("%d events: %s", mark.EventCount, strings.Join(counts, ", ")))
	}
	return ends, begins
}

// TestMarkerRouter routes the transaction topic's records recorded from
// Debezium, through JsonConverter (shipped) and through Apicurio's Avro
// converter in the Confluent wire format (shipped_avro), each under its
// encoding and under auto: an END is an item for the resolver with its
// counts, a BEGIN writes nothing, and the two recordings of the same
// workload give the resolver the same ENDs.
func TestMarkerRouter(t *testing.T) {
	jsonRecords, _ := fixtureMarkers(t, "shipped")
	avroRecords, schemas := fixtureMarkers(t, "shipped_avro")
	if avroRecords[0].Value[0] != 0 {
		t.Fatalf("shipped_avro's transaction topic is not in the Confluent wire format: % x", avroRecords[0].Value[:8])
	}
	want, begins := routeMarkers(t, &markerRouter{encoding: debezium.EncodingJSON}, jsonRecords)
	if begins == 0 || begins != len(want) {
		t.Fatalf("JSON: %d BEGIN and %d END markers routed; want as many of each, and some", begins, len(want))
	}
	for _, tt := range []struct {
		name     string
		encoding debezium.Encoding
		records  []debezium.Record
	}{
		{"json under auto", debezium.EncodingAuto, jsonRecords},
		{"avro", debezium.EncodingAvro, avroRecords},
		{"avro under auto", debezium.EncodingAuto, avroRecords},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, begins := routeMarkers(t, &markerRouter{encoding: tt.encoding, schemas: schemas}, tt.records)
			if begins != len(got) || strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%d BEGIN and these ENDs:\n%s\nwant %d and the JSON recording's:\n%s", begins, strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
			}
		})
	}
}

// withSchemaID returns an Avro record's value with another schema id.
func withSchemaID(value []byte, id uint32) []byte {
	out := append([]byte(nil), value...)
	binary.BigEndian.PutUint32(out[1:5], id)
	return out
}

// TestMarkerRouterBadInput: a record of the transaction topic that cannot
// be read as a marker is a MarkerError naming its offset (the resolver
// stops there; a boundary cannot be skipped or dead-lettered), its reason
// naming the schema id where there is one. A registry that cannot be
// reached is no fault of the record: its SchemaUnavailableError comes back
// unwrapped, for the partition to wait (partition.item), and the same
// marker is read once the registry answers.
func TestMarkerRouterBadInput(t *testing.T) {
	jsonRecords, _ := fixtureMarkers(t, "shipped")
	avroRecords, schemas := fixtureMarkers(t, "shipped_avro")
	end := avroRecords[1]
	id := binary.BigEndian.Uint32(end.Value[1:5])
	at := func(rec debezium.Record, offset int64, value []byte) debezium.Record {
		rec.Offset, rec.Value = offset, value
		return rec
	}
	for _, tt := range []struct {
		name     string
		encoding debezium.Encoding
		rec      debezium.Record
		is       error    // the cause, when it has a sentinel
		says     []string // in the error's text
	}{
		{name: "JSON marker under avro", encoding: debezium.EncodingAvro, rec: at(jsonRecords[1], 11, jsonRecords[1].Value),
			is: debezium.ErrNoMagicByte, says: []string{"@11", "magic byte"}},
		{name: "unknown schema id", encoding: debezium.EncodingAvro, rec: at(end, 12, withSchemaID(end.Value, 0x7ffffffe)),
			is: debezium.ErrUnknownSchemaID, says: []string{"@12", "schema id 2147483646"}},
		{name: "unknown schema id under auto", encoding: debezium.EncodingAuto, rec: at(end, 13, withSchemaID(end.Value, 0x7ffffffe)),
			is: debezium.ErrUnknownSchemaID, says: []string{"@13", "schema id 2147483646"}},
		{name: "body cut short", encoding: debezium.EncodingAvro, rec: at(end, 14, end.Value[:len(end.Value)-3]),
			says: []string{"@14", fmt.Sprintf("schema id %d", id), "does not match its schema"}},
		{name: "bytes after the body", encoding: debezium.EncodingAvro, rec: at(end, 15, append(append([]byte(nil), end.Value...), 1, 2)),
			says: []string{"@15", fmt.Sprintf("schema id %d", id), "bytes left"}},
		{name: "a body of another schema", encoding: debezium.EncodingAvro, rec: at(end, 16, withSchemaID(end.Value, binary.BigEndian.Uint32(avroRecords[1].Key[1:5]))),
			says: []string{"@16"}},
		{name: "Avro marker under json", encoding: debezium.EncodingJSON, rec: at(end, 17, end.Value),
			is: errAvroMarker, says: []string{"@17", "encoding: avro"}},
		{name: "tombstone under avro", encoding: debezium.EncodingAvro, rec: at(end, 18, nil), is: errNullMarker, says: []string{"@18"}},
		{name: "tombstone under json", encoding: debezium.EncodingJSON, rec: at(jsonRecords[1], 19, nil), is: errNullMarker, says: []string{"@19"}},
		{name: "no marker", encoding: debezium.EncodingJSON, rec: debezium.Record{Topic: "x.transaction", Offset: 7, Value: []byte(`{"op":"c"}`)}, says: []string{"@7"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := (&markerRouter{encoding: tt.encoding, schemas: schemas}).Item(context.Background(), nil, tt.rec)
			var marker *txapply.MarkerError
			if ok || !errors.As(err, &marker) || marker.Offset != tt.rec.Offset {
				t.Fatalf("routed (item %v): %v; want a MarkerError at offset %d", ok, err, tt.rec.Offset)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("%v; want it caused by %v", err, tt.is)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%v; want it to say %q", err, s)
				}
			}
		})
	}

	t.Run("registry unavailable", func(t *testing.T) {
		reg := &outageRegistry{schemas: schemas, calls: make(chan uint32, 16)}
		reg.down.Store(true)
		m := &markerRouter{encoding: debezium.EncodingAvro, schemas: reg}
		_, ok, err := m.Item(context.Background(), nil, end)
		var unavailable *debezium.SchemaUnavailableError
		keyID := binary.BigEndian.Uint32(end.Key[1:5])
		if ok || !errors.As(err, &unavailable) || (unavailable.ID != keyID && unavailable.ID != id) || errors.As(err, new(*txapply.MarkerError)) {
			t.Fatalf("routed (item %v): %v; want a SchemaUnavailableError for id %d or %d, not a MarkerError", ok, err, keyID, id)
		}
		reg.down.Store(false)
		if it, ok, err := m.Item(context.Background(), nil, end); err != nil || !ok || it.Change.TxMark.Status != "END" {
			t.Fatalf("once the registry answers: item %v, %v; want the END", ok, err)
		}
	})
}

// queueMarkers hands the worker the transaction topic's records from
// offset first on.
func (w *worker) queueMarkers(first int64, records []debezium.Record) {
	topic := testTopic
	for i, r := range records {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Offset: kafka.Offset(first + int64(i))},
			Key: r.Key, Value: r.Value, Timestamp: time.Now()}
		w.queued += messageBytes(m)
		if !w.in.offer(envelope{msg: m, cost: messageBytes(m), at: w.at}) {
			panic("the test queued more records than the partition's queue takes")
		}
	}
}

// TestResolverWorkerWaitsForTheRegistry: the resolver's worker reading
// Avro markers while the schema registry cannot be reached (a cold cache
// after a restart) waits with its offset unmoved, retrying, and applies the
// END once the registry answers; nothing is stopped or skipped.
func TestResolverWorkerWaitsForTheRegistry(t *testing.T) {
	avroRecords, schemas := fixtureMarkers(t, "shipped_avro")
	reg := &outageRegistry{schemas: schemas, calls: make(chan uint32, 64)}
	reg.down.Store(true)
	w := newWorker(t, batchOf(2, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.router = &markerRouter{encoding: debezium.EncodingAvro, schemas: reg}
	})
	w.queueMarkers(0, avroRecords[:2]) // a BEGIN and its END
	w.start()
	next(t, reg.calls, "a schema request")
	next(t, reg.calls, "a second schema request after the first failed")
	none(t, w.applies.calls, "apply while the registry is down")
	none(t, w.poll.commits, "commit report while the registry is down")
	none(t, w.poll.stops, "stop while the registry is down")
	if waits := value(w.metrics.SchemaWaits.WithLabelValues(testTopic)); waits < 1 {
		t.Errorf("pgsink_schema_registry_unavailable_total %v; want the waits counted", waits)
	}
	reg.down.Store(false)
	got := next(t, w.applies.calls, "apply once the registry answers")
	if len(got.offsets) != 1 || got.offsets[0] != 1 || got.next != 2 {
		t.Errorf("applied ENDs at %v up to %d; want the END at offset 1, up to 2", got.offsets, got.next)
	}
	if c := next(t, w.poll.commits, "commit report"); c != 2 {
		t.Errorf("committed up to %d, want 2", c)
	}
}

// TestResolverWorkerStopsAtAnUnknownSchemaID: an Avro marker whose schema
// id the registry answers it does not have stops the resolver's worker at
// that offset, the id in the reason; nothing is applied, nothing after it.
func TestResolverWorkerStopsAtAnUnknownSchemaID(t *testing.T) {
	avroRecords, schemas := fixtureMarkers(t, "shipped_avro")
	bad := avroRecords[1]
	bad.Value = withSchemaID(bad.Value, 0x7ffffffe)
	w := newWorker(t, batchOf(4, 1<<20, time.Minute), 0, newFakeApplier(), func(d *workerDeps) {
		d.router = &markerRouter{encoding: debezium.EncodingAvro, schemas: schemas}
	})
	w.queueMarkers(0, []debezium.Record{avroRecords[0], bad, avroRecords[2], avroRecords[3]})
	w.start()
	reason := next(t, w.poll.stops, "stop report")
	for _, s := range []string{"@1", "schema id 2147483646"} {
		if !strings.Contains(reason, s) {
			t.Errorf("stopped with %q; want it to say %q", reason, s)
		}
	}
	w.awaitReleased(t)
	none(t, w.applies.calls, "apply")
	none(t, w.poll.commits, "commit report")
}

// TestInspectorReadsMarkersInTheFilesEncoding: pgsink status reads the END
// the resolver waits at as the resolver reads it, in the file's encoding
// and through the registry (review of txavro: it read every END as JSON,
// and under encoding: avro told the operator to set encoding: avro).
func TestInspectorReadsMarkersInTheFilesEncoding(t *testing.T) {
	for _, tc := range []struct {
		encoding config.Encoding
		registry string
		want     debezium.Encoding
	}{
		{encoding: config.EncodingJSON, want: debezium.EncodingJSON},
		{encoding: config.EncodingAvro, registry: "http://127.0.0.1:1", want: debezium.EncodingAvro},
		{encoding: config.EncodingAuto, registry: "http://127.0.0.1:1", want: debezium.EncodingAuto},
	} {
		cfg := &config.Config{Kafka: map[string]string{"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, Encoding: tc.encoding}
		cfg.SchemaRegistry.URL = tc.registry
		in, err := NewInspector(cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.encoding, err)
		}
		if in.markers.encoding != tc.want || (tc.registry != "") != (in.markers.schemas != nil) {
			t.Errorf("encoding %s: markers read as %v with a registry: %v, want %v and %v", tc.encoding, in.markers.encoding, in.markers.schemas != nil, tc.want, tc.registry != "")
		}
		in.Close()
	}
}
