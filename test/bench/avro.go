package main

import (
	"context"
	"time"

	"github.com/pgsink/pgsink/test/stacktest"
)

// AvroRuns is the Avro phase (issue 23): the workload's change events again,
// written by Debezium through Apicurio's AvroConverter in the Confluent wire
// format, drained by pgsink and by the Debezium JDBC sink, beside a pgsink
// drain of the JSON topic in the same phase.
type AvroRuns struct {
	Workload   Workload `json:"workload"`
	Pgsink     *Drain   `json:"pgsink_avro,omitempty"`
	PgsinkJSON *Drain   `json:"pgsink_json,omitempty"`
	JDBC       *Drain   `json:"jdbc_avro,omitempty"`
}

// measureAvro produces (or reuses) the Avro workload of the same size as
// jsonW and drains it: pgsink on Avro, then pgsink on JSON, both at default
// settings and profiled alike, then the JDBC sink on Avro, last because it
// leaves the Connect JVM with a heap to collect. A failed drain costs its
// row, not the others'.
func measureAvro(ctx context.Context, env stacktest.Env, bin string, jsonW Workload, events int, jdbcCap time.Duration, res *Results) *AvroRuns {
	registry, w, ok := avroTopic(ctx, env, events, res)
	if !ok {
		return nil
	}
	a := &AvroRuns{Workload: w}
	var err error
	a.Pgsink, err = drainPgsink(ctx, env, bin, w, pgsinkRun{label: "avro", profile: true, registry: registry})
	res.soft("pgsink on Avro", err)
	a.PgsinkJSON, err = drainPgsink(ctx, env, bin, jsonW, pgsinkRun{label: "json_beside_avro", profile: true})
	res.soft("pgsink on JSON beside Avro", err)
	// Unnest inserts on: in the JSON runs the two variants cost the same
	// CPU per event within noise, and one run of the JDBC sink is what
	// the phase can afford.
	a.JDBC, err = drainJDBC(ctx, env, w, true, jdbcCap)
	res.soft("JDBC sink on Avro", err)
	return a
}

// avroTopic is the Avro workload of events change events, produced unless
// the topic holds it already, and the registry URL pgsink reads its
// schemas from; ok is false (and res has why) when either is missing.
func avroTopic(ctx context.Context, env stacktest.Env, events int, res *Results) (registry string, w Workload, ok bool) {
	url, err := env.Registry()
	if err != nil {
		res.soft("avro", err)
		return "", Workload{}, false
	}
	w, err = ensureWorkload(ctx, env, events, avroSource)
	if err != nil {
		res.soft("avro workload", err)
		return "", Workload{}, false
	}
	return stacktest.ConfluentAPI(url), w, true
}
