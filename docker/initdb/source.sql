-- The source database of docker/compose.yaml, as `make demo` builds it in the
-- local stack (examples/demo/main.go): customers, orders and their outbox,
-- owned by the debezium role so that its filtered publications may include
-- them without a superuser. Owning the database also gives it CREATE on the
-- public schema, which PostgreSQL 15 no longer grants to everyone. Runs once,
-- when the volume is empty.
CREATE ROLE debezium LOGIN REPLICATION PASSWORD 'debezium';
ALTER DATABASE source OWNER TO debezium;
SET ROLE debezium;

CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL, email text,
    credit numeric(14,2) NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), profile jsonb);
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
    total numeric(12,2) NOT NULL, placed_at timestamptz NOT NULL, lines jsonb NOT NULL);
CREATE TABLE public.outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL,
    aggregateid text NOT NULL, type text NOT NULL, payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp());

-- What Debezium's initial snapshot finds, as in the demo.
INSERT INTO public.customers (id, name, email, credit, profile)
SELECT i, 'customer ' || i, 'c' || i || '@example.com', i * 10, jsonb_build_object('tier', i % 3)
  FROM generate_series(1, 500) i;
