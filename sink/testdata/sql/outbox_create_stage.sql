CREATE TEMP TABLE IF NOT EXISTS "pg_temp"."pgsink_outbox_7aabd2f2e9a2a171" (
    "pgsink.event" text NOT NULL,
    "pgsink.offset" bigint NOT NULL,
    "Order Id" text,
    "amount" text,
    "Lines" text
)
