CREATE TEMP TABLE IF NOT EXISTS "pg_temp"."pgsink_outbox_51bcb0cd17cfa903" (
    "pgsink.event" text NOT NULL,
    "pgsink.offset" bigint NOT NULL,
    "Order Id" text,
    "amount" text,
    "Lines" text
) ON COMMIT DELETE ROWS
