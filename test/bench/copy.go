package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// Copy is the physical limit: the final row images COPYed into an empty
// table with the same primary key, on the same server.
type Copy struct {
	Rows    int64   `json:"rows"`
	Bytes   int64   `json:"bytes"` // COPY text format
	Seconds float64 `json:"seconds"`
	RowsPS  float64 `json:"rows_per_s"`
	// EventsPS is the workload's events over the same time: the rate a
	// sink would need to match COPY's wall time for the same end state.
	EventsPS float64 `json:"events_per_s_equivalent"`
	// PGCPUPerM is the server's CPU seconds per million rows copied.
	PGCPUPerM float64 `json:"postgres_cpu_s_per_million_rows"`
}

func copyLimit(ctx context.Context, env stacktest.Env, w Workload) (*Copy, error) {
	src, err := pgx.Connect(ctx, sourceURL(env, w.source()))
	if err != nil {
		return nil, err
	}
	defer src.Close(ctx)
	var buf bytes.Buffer
	if _, err := src.PgConn().CopyTo(ctx, &buf, `COPY (SELECT id, customer_id, status, amount, created_at, attrs FROM public.orders) TO STDOUT`); err != nil {
		return nil, err
	}
	url, err := freshDatabase(ctx, env, "bench_copy", `CREATE TABLE public.orders `+tableDDL)
	if err != nil {
		return nil, err
	}
	dst, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer dst.Close(ctx)
	size := int64(buf.Len())
	pg0 := postgresCPU(ctx, env)
	t0 := time.Now()
	tag, err := dst.PgConn().CopyFrom(ctx, &buf, `COPY public.orders FROM STDIN`)
	if err != nil {
		return nil, err
	}
	el := time.Since(t0).Seconds()
	pg1 := postgresCPU(ctx, env)
	c := &Copy{Rows: tag.RowsAffected(), Bytes: size, Seconds: el, RowsPS: float64(tag.RowsAffected()) / el, EventsPS: float64(w.Events) / el,
		PGCPUPerM: (pg1 - pg0) / float64(max(tag.RowsAffected(), 1)) * 1e6}
	logf("copy: %d final rows (%.0f MB) in %.2fs = %.0f rows/s", c.Rows, float64(size)/1e6, el, c.RowsPS)
	dst.Close(ctx)
	settle(ctx, env, "bench_copy")
	if c.Rows != w.FinalRows {
		return c, fmt.Errorf("copy: %d rows, the source has %d", c.Rows, w.FinalRows)
	}
	return c, nil
}
