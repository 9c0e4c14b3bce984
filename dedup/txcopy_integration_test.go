//go:build integration

package dedup_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgsink/pgsink/dedup"
)

// TestIntegrationTransactionStagingCopy: records staged by COPY read back
// exactly as those staged by INSERT (timestamps to the microsecond, none,
// headers, dead placeholders, keys and values split from their schemas);
// a record of a transaction the resolver applied is neither written nor
// left staged; a
// record staged already fails the COPY with a unique violation, which is
// how the stager learns to run its batch again deduplicating.
func TestIntegrationTransactionStagingCopy(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	at := time.Date(2026, 12, 6, 12, 0, 0, 123456000, time.FixedZone("x", 3600))
	envelope := func(schema, payload string) []byte {
		return []byte(`{"schema":` + schema + `,"payload":` + payload + `}`)
	}
	records := func(txID int64) []dedup.StagedRecord {
		return []dedup.StagedRecord{
			{TxID: txID, TotalOrder: 1, DataCollection: "public.t", Topic: `app "x"`, Partition: 3, Offset: 10, Timestamp: at,
				Key:     envelope(`{"type":"int64","name":"k"}`, `1`),
				Value:   envelope(`{"type":"struct","fields":[{"type":"string","optional":true,"field":"é"}],"name":"v"}`, `{"é":"ü\u0000"}`),
				Headers: []dedup.Header{{Key: "__debezium.oldkey", Value: "\x00bin"}}},
			{TxID: txID, TotalOrder: 2, DataCollection: "public.u", Topic: "t", Partition: 0, Offset: 11, Key: []byte{0, 1, 2}, Value: nil},
			{TxID: txID, TotalOrder: 3, DataCollection: "public.u", Topic: "t", Dead: true},
		}
	}
	// written is how many rows the last stage wrote into tx_staged, short
	// whether it reported staging fewer records than given.
	var written int64
	var short bool
	stage := func(records []dedup.StagedRecord) error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		cp, err := tx.PrepareCopy(b, "g", records)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		if err := cp.Copy(ctx, conn.Conn()); err != nil {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			return err
		}
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.tx_staged WHERE xmin = pg_current_xact_id()::xid`).Scan(&written); err != nil {
			t.Fatal(err)
		}
		b = &pgx.Batch{}
		short = false
		cp.QueueUnstage(b, func() { short = true })
		b.Queue("COMMIT")
		return conn.SendBatch(ctx, b).Close()
	}
	if err := stage(records(1)); err != nil {
		t.Fatal(err)
	}
	if short {
		t.Fatal("a COPY that staged every record reported staging fewer")
	}
	b := &pgx.Batch{}
	insertShort := false
	if _, err := tx.QueueStage(b, "g", records(2), func() { insertShort = true }); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if insertShort {
		t.Fatal("an INSERT that staged every record reported staging fewer")
	}
	copied, err := tx.ReadStaged(ctx, pool, "g", 1, 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	inserted, err := tx.ReadStaged(ctx, pool, "g", 2, 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(copied) != 3 || len(inserted) != 3 {
		t.Fatalf("read %d records staged by COPY and %d by INSERT, want 3 each", len(copied), len(inserted))
	}
	for i := range copied {
		c, in := copied[i], inserted[i]
		c.TxID = in.TxID
		if !reflect.DeepEqual(c, in) || !c.Timestamp.Equal(records(1)[i].Timestamp) {
			t.Errorf("record %d staged by COPY read back as\n%+v\nby INSERT as\n%+v", i, c, in)
		}
	}

	if err := stage(records(1)[:1]); err == nil {
		t.Fatal("a record staged already was staged again by COPY")
	} else if pg := (*pgconn.PgError)(nil); !errors.As(err, &pg) || pg.Code != "23505" {
		t.Fatalf("a record staged already: %v, want a unique violation", err)
	}

	// Transaction 1 is applied; a replay stages its records again.
	b = &pgx.Batch{}
	tx.QueueResolve(b, "g", 1, 0, 3)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := stage(append(records(1), records(3)...)); err != nil {
		t.Fatal(err)
	}
	progress, err := tx.Progress(ctx, pool, "g", []int64{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress[1].Staged) != 0 || progress[3].Staged["public.u"] != 2 {
		t.Fatalf("after a replay by COPY of applied transaction 1 and new transaction 3: %+v; want nothing of 1 staged, 3 staged", progress)
	}
	if written != int64(len(records(3))) {
		t.Fatalf("the replay's COPY wrote %d rows, want %d: the records of applied transaction 1 left out, not written and deleted", written, len(records(3)))
	}
	if !short {
		t.Fatal("the replay's COPY left out the records of applied transaction 1 but did not report staging fewer than given")
	}
	// A batch of applied transactions only writes nothing.
	if err := stage(records(1)); err != nil || written != 0 {
		t.Fatalf("a replay of applied transaction 1 alone: %v, %d rows written; want none", err, written)
	}
	if !short {
		t.Fatal("a replay of applied transaction 1 alone staged nothing but did not report staging fewer than given")
	}
	// The same by INSERT, with the records of transaction 2, staged and
	// not applied, offered again (a re-emission): neither is staged again.
	b = &pgx.Batch{}
	if _, err := tx.QueueStage(b, "g", append(records(1), records(2)...), func() { insertShort = true }); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if !insertShort {
		t.Fatal("an INSERT of records applied or staged already did not report staging fewer than given")
	}
}

// TestIntegrationTransactionStagingCopyResolvedMeanwhile: the resolver
// applies a transaction between the COPY's read of applied transactions
// and the COPY (a replay racing the resolver): the COPY writes its
// records, the DELETE after it takes them out, and its callback reports
// that fewer records are staged than given, which is what keeps the
// staging bound from taking their bytes for staged rows. Without the
// callback on a DELETE that found rows the account passed for exact.
func TestIntegrationTransactionStagingCopyResolvedMeanwhile(t *testing.T) {
	ctx := context.Background()
	pool := migrated(t)
	tx := dedup.NewTransactions(schema)
	records := []dedup.StagedRecord{
		{TxID: 7, TotalOrder: 1, DataCollection: "public.t", Topic: "t", Partition: 0, Offset: 20, Key: []byte("k1"), Value: []byte("v1")},
		{TxID: 7, TotalOrder: 2, DataCollection: "public.t", Topic: "t", Partition: 0, Offset: 21, Key: []byte("k2"), Value: []byte("v2")},
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	cp, err := tx.PrepareCopy(b, "g", records)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	// The resolver's apply transaction commits now.
	b = &pgx.Batch{}
	tx.QueueResolve(b, "g", 7, 0, 2)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := cp.Copy(ctx, conn.Conn()); err != nil {
		t.Fatal(err)
	}
	var written int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.tx_staged WHERE xmin = pg_current_xact_id()::xid`).Scan(&written); err != nil {
		t.Fatal(err)
	}
	if written != int64(len(records)) {
		t.Fatalf("the COPY wrote %d rows, want %d: the transaction was not applied when the COPY read which were", written, len(records))
	}
	short := false
	b = &pgx.Batch{}
	cp.QueueUnstage(b, func() { short = true })
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	var left int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.tx_staged WHERE tx_id = 7`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d records of applied transaction 7 left staged, want none: the DELETE after the COPY takes them out", left)
	}
	if !short {
		t.Fatal("the DELETE after the COPY took out every record it wrote and did not report staging fewer than given")
	}
}
