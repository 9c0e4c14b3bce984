-- The target database of docker/compose.yaml: the demo's tables with the
-- version pair pgsink's stale-update guard keeps per row, owned by the pgsink
-- role, which also creates its own schema (pgsink migrate) here.
CREATE ROLE pgsink LOGIN PASSWORD 'pgsink';
ALTER DATABASE target OWNER TO pgsink;
SET ROLE pgsink;

CREATE TABLE public.customers (id bigint PRIMARY KEY, name text NOT NULL, email text,
    credit numeric(14,2) NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), profile jsonb,
    _pgsink_commit_lsn bigint, _pgsink_lsn bigint);
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
    total numeric(12,2) NOT NULL, placed_at timestamptz NOT NULL, lines jsonb NOT NULL,
    _pgsink_commit_lsn bigint, _pgsink_lsn bigint);
CREATE TABLE public.order_status (order_id text PRIMARY KEY, status text NOT NULL, total numeric(12,2));
