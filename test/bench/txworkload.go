package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The transaction-mode workload (issue 26): the JSON workload's mix of
// change events, in source transactions of txEvents events each, produced
// with Debezium's provide.transaction.metadata=true so that every event
// carries its transaction block and the transaction topic its BEGIN and END.
var txSource = source{format: "json-tx", db: "bench_source_tx", prefix: "bench_tx", topic: "bench_tx.public.orders", state: "workload-tx.json"}

// txTopicOf is the connector's transaction topic (one partition).
func txTopicOf(s source) string { return s.prefix + ".transaction" }

// txMix is one source transaction: 14 creates, 5 updates and a delete,
// the 70/25/5 shape of the 100 large transactions of the JSON workload.
func txMix(events int) mix {
	return mix{rounds: max(1, events/20), creates: 14, updates: 5, deletes: 1}
}

// roundsProcedure runs a workload's rounds, each in its own transaction,
// inside the server: 50,000 transactions are 50,000 client round trips
// and commits otherwise. Its statements are the ones produceWorkload sends
// per round.
const roundsProcedure = `CREATE OR REPLACE PROCEDURE public.bench_rounds(first bigint, rounds int, creates int, updates int, deletes int,
	INOUT updated bigint DEFAULT 0, INOUT deleted bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
	next bigint := first;
	n bigint;
BEGIN
	FOR r IN 1..rounds LOOP
		INSERT INTO public.orders
			SELECT g, (random()*50000)::bigint, (ARRAY['new','paid','shipped'])[1+(random()*2)::int],
			       round((random()*100000)::numeric, 2), ` + createdAtSQL + `, ` + attrsSQL + `
			FROM generate_series(next, next + creates - 1) g;
		next := next + creates;
		UPDATE public.orders o SET status = (ARRAY['paid','shipped','returned'])[1+(random()*2)::int],
			amount = round((random()*100000)::numeric, 2), attrs = ` + attrsSQL + `
			WHERE o.id IN (SELECT id FROM public.orders WHERE id = ANY(ARRAY(
				SELECT 1 + (random()*(next-2))::bigint FROM generate_series(1, updates * 2))) LIMIT updates);
		GET DIAGNOSTICS n = ROW_COUNT;
		updated := updated + n;
		DELETE FROM public.orders WHERE id IN (SELECT id FROM public.orders WHERE id = ANY(ARRAY(
				SELECT 1 + (random()*(next-2))::bigint FROM generate_series(1, deletes * 2))) LIMIT deletes);
		GET DIAGNOSTICS n = ROW_COUNT;
		deleted := deleted + n;
		COMMIT;
	END LOOP;
END $$`

// roundsSession is what a session that CALLs bench_rounds sets first.
// Without a WAL flush per commit: 50,000 of them queue behind the disk
// (shared with Kafka here) for many minutes, and the source's durability is
// not what is measured. Custom plans only: the session caches the
// procedure's plans from its first rounds, when the table is nearly empty,
// and a generic plan made then scans the whole table in every later
// round's UPDATE (nothing invalidates it as the table grows, and the one
// CALL's statistics reach autovacuum only when it ends), so each round
// costs more than the one before.
const roundsSession = `SET synchronous_commit = off; SET plan_cache_mode = force_custom_plan`

// runRounds runs m's rounds from id first as source transactions of their
// own and adds what they did to w. The CALL goes by the simple protocol and
// outside any transaction block: a procedure may COMMIT only so.
func runRounds(ctx context.Context, conn *pgx.Conn, m mix, first int64, w *Workload) error {
	if _, err := conn.Exec(ctx, roundsProcedure+`; `+roundsSession); err != nil {
		return err
	}
	var updated, deleted int64
	err := conn.QueryRow(ctx, fmt.Sprintf(`CALL public.bench_rounds(%d, %d, %d, %d, %d)`, first, m.rounds, m.creates, m.updates, m.deletes),
		pgx.QueryExecModeSimpleProtocol).Scan(&updated, &deleted)
	if err != nil {
		return err
	}
	w.Creates += int64(m.rounds * m.creates)
	w.Updates += updated
	w.Deletes += deleted
	return nil
}
