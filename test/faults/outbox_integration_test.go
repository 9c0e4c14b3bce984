//go:build integration

package faults

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgsink/pgsink/test/stacktest"
)

// The workload's outbox: every balance change also writes an event with a
// unique id, which Debezium's Outbox Event Router (on the same connector as
// the table) routes to <prefix>.outbox.event.Account. The payload repeats
// the id so the target row can be keyed by it.
const outboxSourceDDL = `CREATE TABLE public.outbox (
	id uuid PRIMARY KEY,
	aggregatetype text NOT NULL,
	aggregateid text NOT NULL,
	type text NOT NULL,
	payload jsonb NOT NULL)`

// outboxInsert writes one event for account $1 with delta $2, its id drawn
// by the server and repeated inside the payload.
const outboxInsert = `WITH e AS (SELECT gen_random_uuid() AS id)
	INSERT INTO public.outbox SELECT e.id, 'Account', $1::int::text, 'BalanceChanged',
	  jsonb_build_object('event_id', e.id, 'account_id', $1::int, 'delta', $2::int) FROM e`

// The target of the events, keyed by event id, and the O invariant: a
// BEFORE INSERT OR UPDATE trigger records each event id applied and raises
// when pgsink writes one a second time. It fires for every row pgsink
// proposes, before ON CONFLICT is considered, so even a re-application that
// would change nothing is caught; rows of a rolled-back transaction leave
// no trace in the ledger, so only committed applications count.
const (
	markO           = "faults-invariant-O"
	outboxTargetDDL = `CREATE TABLE public.account_events (
	event_id uuid PRIMARY KEY,
	account_id integer NOT NULL,
	delta integer NOT NULL);
CREATE TABLE public.faults_outbox_applied (event_id uuid PRIMARY KEY);
CREATE FUNCTION public.faults_outbox_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.faults_outbox_applied VALUES (NEW.event_id) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION '` + markO + `: event % applied a second time', NEW.event_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER faults_outbox_once BEFORE INSERT OR UPDATE ON public.account_events
  FOR EACH ROW EXECUTE FUNCTION public.faults_outbox_once();`
)

// outboxTableYAML is the pgsink table entry of the events.
const outboxTableYAML = `
  - topic: %s
    format: outbox
    target: public.account_events
    key: [event_id]
    payload: { event_id: $.event_id, account_id: $.account_id, delta: $.delta }
`

// debeziumOverrides streams both source tables through one connector (one
// slot): the Event Router applies only to the outbox table's topic, by a
// TopicNameMatches predicate.
func debeziumOverrides(prefix string) map[string]string {
	o := map[string]string{"table.include.list": "public.accounts,public.outbox"}
	for k, v := range stacktest.OutboxRouter(prefix) {
		if strings.HasPrefix(k, "transforms") {
			o[k] = v
		}
	}
	o["transforms.outbox.predicate"] = "isOutbox"
	o["predicates"] = "isOutbox"
	o["predicates.isOutbox.type"] = "org.apache.kafka.connect.transforms.predicates.TopicNameMatches"
	o["predicates.isOutbox.pattern"] = regexp.QuoteMeta(prefix + ".public.outbox")
	return o
}

// outboxTopic is where the Event Router puts the workload's events.
func outboxTopic(prefix string) string { return prefix + ".outbox.event.Account" }

// checkO: every event written to the source outbox is in the target exactly
// once — the trigger never raised (in a log or a dead letter), the ledger of
// applications equals the source's event ids, and so do the target rows.
func (s *scenario) checkO(ctx context.Context) verdict {
	if who := s.logsContaining(markO); len(who) > 0 {
		return fail("outbox trigger raised in %v", who)
	}
	if dl := s.deadLettersMatching(ctx, markO); dl > 0 {
		return fail("%d dead letters carry the outbox trigger's error (an event applied twice)", dl)
	}
	src, err := pgx.Connect(ctx, s.st.SourceURL)
	if err != nil {
		return fail("source: %v", err)
	}
	defer src.Close(ctx)
	ids := func(conn *pgx.Conn, sql string) (map[string]bool, error) {
		rows, _ := conn.Query(ctx, sql)
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		set := make(map[string]bool, len(list))
		for _, id := range list {
			set[id] = true
		}
		return set, err
	}
	want, err := ids(src, `SELECT id::text FROM public.outbox`)
	if err != nil {
		return fail("source outbox: %v", err)
	}
	applied, err := ids(s.target, `SELECT event_id::text FROM public.faults_outbox_applied`)
	if err != nil {
		return fail("applied ledger: %v", err)
	}
	rows, err := ids(s.target, `SELECT event_id::text FROM public.account_events`)
	if err != nil {
		return fail("target events: %v", err)
	}
	s.result.OutboxEvents = len(want)
	var missing, extra int
	for id := range want {
		if !applied[id] || !rows[id] {
			missing++
		}
	}
	for id := range rows {
		if !want[id] {
			extra++
		}
	}
	if missing > 0 || extra > 0 || len(applied) != len(want) {
		return fail("%d source events: %d not applied, %d target events unknown to the source, %d applications recorded", len(want), missing, extra, len(applied))
	}
	if len(want) == 0 && s.load.outboxEvents() > 0 {
		return fail("the workload wrote %d outbox events but the source holds none", s.load.outboxEvents())
	}
	return pass(fmt.Sprintf("%d events, each applied exactly once", len(want)))
}
