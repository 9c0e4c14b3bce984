package main

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jackc/pgx/v5"
)

//go:embed workload.sql
var schemaSQL string

// allColumns lists all_types' columns in the order the inserts below use.
const allColumns = `id, c_smallint, c_integer, c_bigint, c_numeric, c_numeric_free, c_real, c_double,
  c_boolean, c_text, c_varchar, c_char, c_bytea, c_uuid, c_json, c_jsonb, c_date, c_time, c_timetz,
  c_timestamp, c_timestamptz, c_interval, c_enum, c_int_array, c_text_array, c_inet, c_cidr,
  c_macaddr, c_bit, c_varbit, c_money, c_xml, c_point, "Order Id", c_time3, c_timestamp3`

// snapshotSQL runs before the connector exists: these rows arrive as op "r".
var snapshotSQL = []string{
	`INSERT INTO all_types (` + allColumns + `) VALUES (1, 32767, 2147483647, 9223372036854775807,
	  1234567890.12, 123456789012345678901234567890.123456789012, 3.14159, 2.718281828459045, true,
	  'plain text', 'varchar value', 'abc', '\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	  '{"a": 1, "b": [1, 2]}', '{"k": "v", "n": 1.5}', '2024-02-29', '13:45:30.123456',
	  '13:45:30.123456+02', '2024-02-29 13:45:30.123456', '2024-02-29 13:45:30.123456+00',
	  '1 year 2 months 3 days 04:05:06.789', 'happy', '{1,2,3}', '{"a","b c",NULL}', '192.168.1.1',
	  '10.0.0.0/8', '08:00:2b:01:02:03', B'10101010', B'101', 12.34, '<a>x</a>', '(1.5,2.5)', 7,
	  '13:45:30.123', '2024-02-29 13:45:30.123')`,
	`INSERT INTO all_types (id) VALUES (2)`, // every other column NULL
	`INSERT INTO "CamelCase" VALUES (1, 'snapshot row')`,
}

// step is one statement of the streamed workload; conn "b" is a second
// session, used to interleave two transactions.
type step struct {
	conn string
	sql  string
}

var streamSteps = []step{
	// Negative and boundary values, unicode, 30+ digit numerics.
	{"a", `INSERT INTO all_types (` + allColumns + `) VALUES (3, -32768, -2147483648, -9223372036854775808,
	  -9999999999.99, -0.000000000000000000000000000000000001, -1.5e-10, -1.7976931348623157e308, false,
	  'Grüße 👋 日本語 "quoted" \ back\slash', 'ünïcödé', 'x', '\x00ff', '00000000-0000-0000-0000-000000000000',
	  '[1, "two", null]', '{"nested": {"deep": [true, false]}, "unicode": "é"}', '0001-01-01', '00:00:00',
	  '23:59:59.999999-11', '1970-01-01 00:00:00', '1969-12-31 23:59:59.999999+00', '-3 days -00:00:01',
	  'sad', '{}', '{}', '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', B'00000000', B'', -0.99,
	  '<root attr="1"><b>ü</b></root>', '(-1,-0.5)', -1, '23:59:59.999', '1900-01-01 00:00:00.001')`},
	// Infinities and large TOASTed values.
	{"a", `INSERT INTO all_types (` + allColumns + `, c_big_text, c_big_jsonb, c_big_bytea, c_big_int_array) VALUES (4,
	  1, 1, 1, 0.01, 99999999999999999999999999999999999999.99999999999999999999, 'Infinity', 'NaN', true,
	  'toast row', 'v', 'abcde', '\x', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '{}', '[]', '2038-01-19',
	  '24:00:00', '00:00:00+14', 'infinity', 'infinity', '178000000 years', 'ok', '{NULL,1}',
	  '{"",NULL}', '0.0.0.0', '192.168.0.0/16', '00:00:00:00:00:00', B'11111111', B'1010101010101010101',
	  0, '<e/>', '(0,0)', 4, '00:00:00', 'infinity',
	  big(6000, 'text'), jsonb_build_object('blob', big(6000, 'jsonb')), decode(big(12000, 'bytea'), 'hex'),
	  (SELECT array_agg(i * 7919 % 1000003) FROM generate_series(1, 3000) AS i))`},
	{"a", `INSERT INTO all_types (id, c_timestamptz, c_timestamp, c_date, c_numeric_free, c_real, c_double)
	  VALUES (11, '-infinity', '-infinity', '-infinity', 'NaN', '-Infinity', 'Infinity')`},
	// An update that leaves the TOASTed columns unchanged.
	{"a", `UPDATE all_types SET c_integer = c_integer + 1, c_text = 'toast row, updated' WHERE id = 4`},
	// An update that changes them.
	{"a", `UPDATE all_types SET c_big_text = big(6000, 'text2') WHERE id = 4`},
	{"a", `UPDATE all_types SET c_text = 'updated', c_numeric = 42.42, c_jsonb = '{"k": "changed"}',
	  c_timestamptz = '2030-06-15 08:00:00+05:30', c_text_array = '{x,y}', c_enum = NULL WHERE id = 1`},
	{"a", `UPDATE all_types SET c_text = NULL WHERE id = 1`},
	// A delete (then Debezium's tombstone).
	{"a", `DELETE FROM all_types WHERE id = 2`},
	// A primary-key change: delete + tombstone of the old key, create of the new.
	{"a", `UPDATE all_types SET id = 30 WHERE id = 3`},
	// A multi-row insert in one transaction.
	{"a", `BEGIN`},
	{"a", `INSERT INTO all_types (id, c_text) VALUES (5, 'tx row 5'), (6, 'tx row 6')`},
	{"a", `INSERT INTO all_types (id, c_text) VALUES (7, 'tx row 7')`},
	{"a", `UPDATE all_types SET c_text = 'tx row 5, updated in its own transaction' WHERE id = 5`},
	{"a", `COMMIT`},
	// Two interleaved transactions: B commits first although A began first.
	{"a", `BEGIN`},
	{"a", `INSERT INTO all_types (id, c_text) VALUES (8, 'tx A first')`},
	{"b", `BEGIN`},
	{"b", `INSERT INTO all_types (id, c_text) VALUES (9, 'tx B first')`},
	{"a", `INSERT INTO all_types (id, c_text) VALUES (10, 'tx A second')`},
	{"b", `UPDATE all_types SET c_text = 'tx B second' WHERE id = 6`},
	{"b", `COMMIT`},
	{"a", `UPDATE all_types SET c_text = 'tx A third' WHERE id = 7`},
	{"a", `COMMIT`},
	// Mixed-case identifiers, a truncate, a logical decoding message.
	{"a", `INSERT INTO "CamelCase" VALUES (2, 'streamed row')`},
	{"a", `UPDATE "CamelCase" SET "Mixed Name" = 'renamed' WHERE "Id" = 1`},
	{"a", `TRUNCATE "CamelCase"`},
	{"a", `INSERT INTO "CamelCase" VALUES (3, 'after truncate')`},
	{"a", `SELECT pg_logical_emit_message(true, 'pgsink-fixture', 'a transactional logical message')`},
	// Outbox events: expanded JSON payloads, the event id becomes header "id".
	{"a", `INSERT INTO outbox VALUES ('11111111-1111-1111-1111-111111111111', 'Order', 'order-1', 'OrderCreated',
	  '{"id": "order-1", "customerId": 7, "status": "created", "amount": 19.99, "lines": [{"sku": "A", "qty": 2}]}')`},
	{"a", `INSERT INTO outbox VALUES ('22222222-2222-2222-2222-222222222222', 'Order', 'order-1', 'OrderPaid',
	  '{"id": "order-1", "customerId": 7, "status": "paid", "paidAt": "2026-11-26T10:00:00Z"}')`},
	{"a", `INSERT INTO outbox VALUES ('33333333-3333-3333-3333-333333333333', 'Customer', 'cust-7', 'CustomerRenamed',
	  '{"id": 7, "name": "Zoë"}')`},
	// The usual outbox hygiene: rows are deleted right after insertion. The
	// Event Router ignores deletes; the fixtures show that it does.
	{"a", `DELETE FROM outbox WHERE id = '33333333-3333-3333-3333-333333333333'`},
	{"a", `INSERT INTO fixture_end VALUES (1)`},
}

// outboxEvents is how many records the Event Router must emit for the
// workload above.
const outboxEvents = 3

func runSteps(ctx context.Context, conns map[string]*pgx.Conn, steps []step) error {
	for i, s := range steps {
		if _, err := conns[s.conn].Exec(ctx, s.sql); err != nil {
			return fmt.Errorf("step %d (session %s): %w\n%s", i, s.conn, err, s.sql)
		}
	}
	return nil
}
