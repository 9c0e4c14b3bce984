//go:build integration

package dedup_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgsink/pgsink/dedup"
)

// stageIn stages records of group g, as a batch transaction would.
func stageIn(t *testing.T, pool *pgxpool.Pool, tx dedup.Transactions, records ...dedup.StagedRecord) {
	t.Helper()
	b := &pgx.Batch{}
	if _, err := tx.QueueStage(b, "g", records, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(context.Background(), b).Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationTransactionStaging: records are staged once per place in
// their transaction (a re-emission at a new offset is kept once), counted
// per collection, read back in order a chunk at a time with their bytes and
// headers, and, once their transaction is resolved, deleted and never
// staged again (a replay).
func TestIntegrationTransactionStaging(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	stage := func(records ...dedup.StagedRecord) { t.Helper(); stageIn(t, pool, tx, records...) }
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rec := func(txID, order int64, collection string, offset int64) dedup.StagedRecord {
		return dedup.StagedRecord{TxID: txID, TotalOrder: order, DataCollection: collection, Topic: `app "x"`, Partition: int32(order % 2),
			Offset: offset, Timestamp: at, Key: []byte{0, 1}, Value: []byte(`{"v":1}`), Headers: []dedup.Header{{Key: "k", Value: "\x00bin"}}}
	}
	stage(rec(7, 1, "public.accounts", 10), rec(7, 3, "public.orders", 11))
	stage(rec(7, 2, "public.accounts", 12), rec(7, 1, "public.accounts", 99)) // 99: a re-emission of place 1
	stage(rec(8, 1, "public.accounts", 13))
	// A record without key, value, timestamp and headers is staged too.
	stage(dedup.StagedRecord{TxID: 8, TotalOrder: 2, DataCollection: "public.accounts", Topic: "t", Dead: true})

	counts, err := tx.StagedCounts(ctx, pool, "g", 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"public.accounts": 2, "public.orders": 1}; !maps.Equal(counts, want) {
		t.Fatalf("staged counts of transaction 7 = %v, want %v", counts, want)
	}
	progress, err := tx.Progress(ctx, pool, "g", []int64{7, 8, 42})
	if err != nil || progress[7].Resolved || !maps.Equal(progress[7].Staged, counts) || progress[8].Staged["public.accounts"] != 2 || len(progress[42].Staged) != 0 {
		t.Fatalf("Progress(7, 8, 42) = %v, %v; want none applied, 7 as StagedCounts says, 8 with 2 records, 42 with none", progress, err)
	}
	var got []dedup.StagedRecord
	for after := int64(0); ; {
		chunk, err := tx.ReadStaged(ctx, pool, "g", 7, after, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunk) == 0 {
			break
		}
		got = append(got, chunk...)
		after = chunk[len(chunk)-1].TotalOrder
	}
	if len(got) != 3 {
		t.Fatalf("read %d staged records of transaction 7, want 3: %+v", len(got), got)
	}
	for i, r := range got {
		if r.TotalOrder != int64(i+1) {
			t.Errorf("record %d has place %d: not in the transaction's order", i, r.TotalOrder)
		}
		if r.Offset == 99 {
			t.Errorf("the re-emission at offset 99 replaced the staged record")
		}
		if string(r.Value) != `{"v":1}` || len(r.Key) != 2 || !r.Timestamp.Equal(at) || len(r.Headers) != 1 || r.Headers[0].Value != "\x00bin" || r.Topic != `app "x"` {
			t.Errorf("record %d did not come back as staged: %+v", i, r)
		}
	}
	// A chunk ends with the record that brings it to its bytes: records
	// of 9 bytes, a bound of 10, two records.
	bounded, err := tx.ReadStaged(ctx, pool, "g", 7, 0, 10, 10)
	if err != nil || len(bounded) != 2 || bounded[1].TotalOrder != 2 {
		t.Fatalf("a chunk of at most 10 records and 10 bytes: %d records (%v), want the first 2", len(bounded), err)
	}
	if one, err := tx.ReadStaged(ctx, pool, "g", 7, 0, 10, 1); err != nil || len(one) != 1 {
		t.Fatalf("a chunk bounded below one record's bytes: %d records (%v), want 1", len(one), err)
	}
	dead, err := tx.ReadStaged(ctx, pool, "g", 8, 1, 10, 0)
	if err != nil || len(dead) != 1 || !dead[0].Dead || dead[0].Key != nil || dead[0].Value != nil || !dead[0].Timestamp.IsZero() {
		t.Fatalf("the dead placeholder of transaction 8 came back as %+v, %v", dead, err)
	}

	// An END Debezium re-emitted asks for its transaction twice: its
	// records count once.
	progress, err = tx.Progress(ctx, pool, "g", []int64{7, 7})
	if n := progress[7].Staged["public.accounts"]; err != nil || n != 2 {
		t.Fatalf("Progress of transaction 7 asked twice: %d staged records of public.accounts (%v), want 2", n, err)
	}

	oldest, staged, ok, err := tx.OldestUnresolved(ctx, pool, "g")
	if err != nil || !ok || oldest.TxID != 7 || oldest.Records != 3 || staged != 5 || oldest.Age < 0 || oldest.Age > time.Hour {
		t.Fatalf("OldestUnresolved = %+v, %d staged, %v, %v; want transaction 7 with 3 records, 5 staged", oldest, staged, ok, err)
	}
	if first, ok, err := tx.StagedLongerThan(ctx, pool, "g", 0); err != nil || !ok || first.TxID != 7 || !first.FirstStaged.Equal(oldest.FirstStaged) || first.Age < 0 {
		t.Fatalf("StagedLongerThan = %+v, %v, %v; want transaction 7 first staged at %s, as OldestUnresolved says", first, ok, err, oldest.FirstStaged)
	}

	byPartition := func() map[int32]int64 {
		t.Helper()
		list, err := tx.StagedByPartition(ctx, pool, "g")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		for _, p := range list {
			if p.Topic != `app "x"` || !p.Oldest.Equal(at) {
				t.Errorf("staged per partition: %+v, want only topic app \"x\" with the records' time (the dead record's topic is not there)", p)
			}
			out[p.Partition] = p.Records
		}
		return out
	}
	if got, want := byPartition(), map[int32]int64{0: 1, 1: 3}; !maps.Equal(got, want) {
		t.Fatalf("staged records per partition %v, want %v (transaction 7's three and 8's live one)", got, want)
	}

	b := &pgx.Batch{}
	tx.QueueResolve(b, "g", 7, 0, 3)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if resolved, err := tx.Resolved(ctx, pool, "g", 7); err != nil || !resolved {
		t.Fatalf("Resolved(7) = %v, %v after QueueResolve", resolved, err)
	}
	if progress, err := tx.Progress(ctx, pool, "g", []int64{7, 8}); err != nil || !progress[7].Resolved || progress[8].Resolved {
		t.Fatalf("Progress(7, 8) after resolving 7 = %v, %v; want 7 applied, 8 not", progress, err)
	}
	if counts, err := tx.StagedCounts(ctx, pool, "g", 7); err != nil || len(counts) != 0 {
		t.Fatalf("staged counts of resolved transaction 7 = %v, %v; want none", counts, err)
	}
	if got, want := byPartition(), map[int32]int64{1: 1}; !maps.Equal(got, want) {
		t.Fatalf("staged records per partition after transaction 7 was applied: %v, want %v", got, want)
	}
	// The idle check finds a transaction by its first staged record,
	// whatever its total_order: transaction 9's record at total_order 1
	// is not staged (a logical decoding message, which pgsink does not
	// stage), and 9 is found once 8, staged before it, is applied.
	stage(rec(9, 2, "public.accounts", 14))
	if first, ok, err := tx.StagedLongerThan(ctx, pool, "g", 0); err != nil || !ok || first.TxID != 8 {
		t.Fatalf("StagedLongerThan with transactions 8 and 9 staged = %+v, %v, %v; want 8", first, ok, err)
	}
	b = &pgx.Batch{}
	tx.QueueResolve(b, "g", 8, 0, 2)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	oldest, staged, ok, err = tx.OldestUnresolved(ctx, pool, "g")
	if err != nil || !ok || oldest.TxID != 9 || staged != 1 {
		t.Fatalf("OldestUnresolved with transaction 9's second record staged = %+v, %d staged, %v, %v; want 9, its one record staged", oldest, staged, ok, err)
	}
	if first, ok, err := tx.StagedLongerThan(ctx, pool, "g", 0); err != nil || !ok || first.TxID != 9 || !first.FirstStaged.Equal(oldest.FirstStaged) {
		t.Fatalf("StagedLongerThan with only transaction 9's second record staged = %+v, %v, %v; want 9 first staged at %s (a transaction that began with a message)", first, ok, err, oldest.FirstStaged)
	}
	if first, ok, err := tx.StagedLongerThan(ctx, pool, "g", time.Hour); err != nil || ok {
		t.Fatalf("StagedLongerThan 1h with transaction 9 staged just now = %+v, %v, %v; want none", first, ok, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.tx_staged SET staged_at = now() - interval '2 hours' WHERE tx_id = 9`); err != nil {
		t.Fatal(err)
	}
	if first, ok, err := tx.StagedLongerThan(ctx, pool, "g", time.Hour); err != nil || !ok || first.TxID != 9 || first.Age < time.Hour {
		t.Fatalf("StagedLongerThan 1h with transaction 9 staged 2h ago = %+v, %v, %v; want 9", first, ok, err)
	}
	stage(rec(7, 1, "public.accounts", 10)) // a replay of its partition
	if counts, err := tx.StagedCounts(ctx, pool, "g", 7); err != nil || len(counts) != 0 {
		t.Fatalf("a replayed record of resolved transaction 7 was staged again: %v, %v", counts, err)
	}
	b = &pgx.Batch{}
	tx.QueueResolve(b, "g", 7, 0, 3)
	if err := pool.SendBatch(ctx, b).Close(); err == nil {
		t.Fatal("resolving transaction 7 a second time succeeded; it must fail on tx_resolved's key")
	}
	if resolved, err := tx.Resolved(ctx, pool, "other group", 7); err != nil || resolved {
		t.Fatalf("Resolved(7) of another group = %v, %v", resolved, err)
	}
}

// TestIntegrationTransactionStagingSchemas: a JsonConverter key and value
// are staged without their schema, stored once in tx_schemas, and read back
// byte for byte (by another reader too, which has to read the schema);
// rows staged whole, as before migration 0008, read back as they are;
// several transactions read in one query come in their order, and a read
// cut by its bytes says so. Migration 0008's down puts staged records back
// together for the previous version.
func TestIntegrationTransactionStagingSchemas(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	valueSchema := `{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":true,"field":"note"}],"optional":false,"name":"t.Value"}`
	keySchema := `{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"t.Key"}`
	envelope := func(schema, payload string) []byte {
		return []byte(`{"schema":` + schema + `,"payload":` + payload + `}`)
	}
	rec := func(txID, order int64) dedup.StagedRecord {
		return dedup.StagedRecord{TxID: txID, TotalOrder: order, DataCollection: "public.t", Topic: "t", Offset: txID*10 + order,
			Key:   envelope(keySchema, fmt.Sprintf(`{"id":%d}`, order)),
			Value: envelope(valueSchema, fmt.Sprintf(`{"id":%d,"note":"n%d"}`, order, txID))}
	}
	b := &pgx.Batch{}
	if _, err := tx.QueueStage(b, "g", []dedup.StagedRecord{rec(1, 1), rec(1, 2), rec(2, 1), rec(3, 1), rec(3, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	// A row as the previous version staged it: the whole record.
	old := dedup.StagedRecord{TxID: 4, TotalOrder: 1, Topic: "t", Offset: 41, Key: envelope(keySchema, `{"id":1}`), Value: envelope(valueSchema, `{"id":1,"note":"old"}`)}
	if _, err := pool.Exec(ctx, `INSERT INTO pgsink.tx_staged (group_id, tx_id, total_order, data_collection, topic, partition, kafka_offset, record_key, record_value)
		VALUES ('g', 4, 1, 'public.t', 't', 0, 41, $1, $2)`, old.Key, old.Value); err != nil {
		t.Fatal(err)
	}
	var schemas int
	var storedValue []byte
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgsink.tx_schemas), record_value FROM pgsink.tx_staged WHERE tx_id = 1 AND total_order = 2`).
		Scan(&schemas, &storedValue); err != nil {
		t.Fatal(err)
	}
	if schemas != 2 || string(storedValue) != `{"id":2,"note":"n1"}` {
		t.Fatalf("staged %d schemas and the value %s; want 2 schemas and the payload alone", schemas, storedValue)
	}
	same := func(got []dedup.StagedRecord, want ...dedup.StagedRecord) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("read %d records, want %d", len(got), len(want))
		}
		for i := range want {
			key, value := got[i].Whole()
			if got[i].TxID != want[i].TxID || got[i].TotalOrder != want[i].TotalOrder || !bytes.Equal(key, want[i].Key) || !bytes.Equal(value, want[i].Value) ||
				got[i].Size() != int64(len(want[i].Key)+len(want[i].Value)) {
				t.Fatalf("record %d read as %d/%d %s %s (%d bytes), want %d/%d %s %s", i, got[i].TxID, got[i].TotalOrder, key, value, got[i].Size(),
					want[i].TxID, want[i].TotalOrder, want[i].Key, want[i].Value)
			}
		}
		// Split records of one schema share its bytes.
		if len(got) > 1 && got[0].ValueSchema != nil && &got[0].ValueSchema[0] != &got[1].ValueSchema[0] {
			t.Fatal("two records of one value schema hold a copy each")
		}
	}
	for _, reader := range []dedup.Transactions{tx, dedup.NewTransactions(schema)} { // the stager's cache, then none
		got, err := reader.ReadStaged(ctx, pool, "g", 1, 0, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		same(got, rec(1, 1), rec(1, 2))
	}
	got, cut, err := tx.ReadStagedOf(ctx, pool, "g", []int64{3, 4, 1, 99}, 0)
	if err != nil || cut {
		t.Fatalf("ReadStagedOf(3, 4, 1, 99): cut %v, %v", cut, err)
	}
	same(got, rec(3, 1), rec(3, 2), old, rec(1, 1), rec(1, 2))
	one := rec(3, 1)
	got, cut, err = tx.ReadStagedOf(ctx, pool, "g", []int64{3, 4, 1}, int64(len(one.Key)+len(one.Value))+1)
	if err != nil || !cut {
		t.Fatalf("ReadStagedOf bounded to two records' bytes: cut %v, %v; want cut", cut, err)
	}
	same(got, rec(3, 1), rec(3, 2))

	down, err := os.ReadFile("migrations/0008_tx_staged_schemas.down.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SET search_path = pgsink; `+string(down)); err != nil {
		t.Fatal(err)
	}
	var key, value []byte
	if err := pool.QueryRow(ctx, `SELECT record_key, record_value FROM pgsink.tx_staged WHERE tx_id = 1 AND total_order = 2`).Scan(&key, &value); err != nil {
		t.Fatal(err)
	}
	if want := rec(1, 2); !bytes.Equal(key, want.Key) || !bytes.Equal(value, want.Value) {
		t.Fatalf("after migration 0008's down the record is %s %s, want %s %s", key, value, want.Key, want.Value)
	}
}

// TestIntegrationTransactionStagingSchemaCacheFull: a reader whose schema
// cache fills while it learns the schemas of a read still joins every
// record of that read, those whose schema it knew before included (the
// cache was emptied under them: "tx_schemas lost a row", and the resolver
// stopped on a transaction it could apply).
func TestIntegrationTransactionStagingSchemaCacheFull(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	n := dedup.MaxJoinSchemas + 1
	records := make([]dedup.StagedRecord, n)
	for i := range records {
		records[i] = dedup.StagedRecord{TxID: 1, TotalOrder: int64(i + 1), DataCollection: "public.t", Topic: "t", Offset: int64(i),
			Key: []byte(fmt.Sprintf(`{"schema":{"type":"int64","name":"k%d"},"payload":%d}`, i, i))}
	}
	b := &pgx.Batch{}
	if _, err := dedup.NewTransactions(schema).QueueStage(b, "g", records, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	reader := dedup.NewTransactions(schema)
	// The first record's schema is known to the reader from here on.
	if got, err := reader.ReadStaged(ctx, pool, "g", 1, 0, 1, 0); err != nil || len(got) != 1 {
		t.Fatalf("ReadStaged of the first record: %d records, %v", len(got), err)
	}
	got, err := reader.ReadStaged(ctx, pool, "g", 1, 0, n, 0)
	if err != nil {
		t.Fatalf("ReadStaged of %d records with as many schemas: %v", n, err)
	}
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	for i := range got {
		if key, _ := got[i].Whole(); !bytes.Equal(key, records[i].Key) {
			t.Fatalf("record %d read as %s, want %s", i, key, records[i].Key)
		}
	}
}
