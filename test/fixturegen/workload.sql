-- Source schema for the recorded Debezium fixtures (test/fixturegen).
-- Every PostgreSQL type pgsink must decode, mixed-case and quoted identifiers,
-- and an Outbox Event Router table. An audit trigger keeps each row image as
-- PostgreSQL renders it (row_to_json), so decoding is checked value by value.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE all_types (
  id              integer PRIMARY KEY,
  c_smallint      smallint,
  c_integer       integer,
  c_bigint        bigint,
  c_numeric       numeric(12,2),
  c_numeric_free  numeric,
  c_real          real,
  c_double        double precision,
  c_boolean       boolean,
  c_text          text,
  c_varchar       varchar(20),
  c_char          char(5),
  c_bytea         bytea,
  c_uuid          uuid,
  c_json          json,
  c_jsonb         jsonb,
  c_date          date,
  c_time          time,
  c_timetz        timetz,
  c_timestamp     timestamp,
  c_timestamptz   timestamptz,
  c_interval      interval,
  c_enum          mood,
  c_int_array     integer[],
  c_text_array    text[],
  c_inet          inet,
  c_cidr          cidr,
  c_macaddr       macaddr,
  c_bit           bit(8),
  c_varbit        varbit,
  c_money         money,
  c_xml           xml,
  c_point         point,
  "Order Id"      integer,
  -- Millisecond precision: io.debezium.time.Time and Timestamp under
  -- time.precision.mode=adaptive (PostgreSQL has no sub-microsecond types,
  -- so NanoTime and NanoTimestamp never occur).
  c_time3         time(3),
  c_timestamp3    timestamp(3),
  -- Large, incompressible values stored out of line (TOAST): an update that
  -- leaves them alone gives Debezium's unavailable-value placeholder under
  -- REPLICA IDENTITY DEFAULT.
  c_big_text      text,
  c_big_jsonb     jsonb,
  c_big_bytea     bytea,
  c_big_int_array integer[]
);

CREATE TABLE "CamelCase" (
  "Id"         integer PRIMARY KEY,
  "Mixed Name" text
);

CREATE TABLE outbox (
  id            uuid PRIMARY KEY,
  aggregatetype text NOT NULL,
  aggregateid   text NOT NULL,
  type          text NOT NULL,
  payload       jsonb
);

-- The last row the workload writes; its event tells the recorder that every
-- earlier change has been emitted.
CREATE TABLE fixture_end (id integer PRIMARY KEY);

CREATE TABLE fixture_audit (
  seq   bigserial PRIMARY KEY,
  tbl   text NOT NULL,
  op    text NOT NULL,
  txid  bigint NOT NULL,
  old   json,
  new   json
);

CREATE FUNCTION fixture_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fixture_audit (tbl, op, txid, old, new)
  VALUES (TG_TABLE_NAME, TG_OP, txid_current(),
          CASE WHEN TG_LEVEL = 'ROW' AND TG_OP IN ('UPDATE', 'DELETE') THEN row_to_json(OLD) END,
          CASE WHEN TG_LEVEL = 'ROW' AND TG_OP IN ('INSERT', 'UPDATE') THEN row_to_json(NEW) END);
  RETURN NULL;
END $$;

CREATE TRIGGER audit_rows AFTER INSERT OR UPDATE OR DELETE ON all_types
  FOR EACH ROW EXECUTE FUNCTION fixture_audit();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON all_types
  FOR EACH STATEMENT EXECUTE FUNCTION fixture_audit();
CREATE TRIGGER audit_rows AFTER INSERT OR UPDATE OR DELETE ON "CamelCase"
  FOR EACH ROW EXECUTE FUNCTION fixture_audit();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON "CamelCase"
  FOR EACH STATEMENT EXECUTE FUNCTION fixture_audit();
CREATE TRIGGER audit_rows AFTER INSERT OR UPDATE OR DELETE ON outbox
  FOR EACH ROW EXECUTE FUNCTION fixture_audit();

-- big(n, seed): n characters of hex from chained md5, which pglz cannot
-- compress, so the value is moved out of line.
CREATE FUNCTION big(n integer, seed text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT left(string_agg(md5(seed || i::text), '' ORDER BY i), n) FROM generate_series(1, n / 32 + 1) AS i
$$;
