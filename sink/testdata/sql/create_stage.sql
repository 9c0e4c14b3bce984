CREATE TEMP TABLE IF NOT EXISTS "pg_temp"."pgsink_stage_87a23aa6581d77d5" (
    "pgsink.op" "char" NOT NULL,
    "pgsink.mask" integer NOT NULL,
    "pgsink.commit" bigint NOT NULL,
    "pgsink.lsn" bigint NOT NULL,
    "Order Id" bigint,
    "region" text,
    "amount" numeric(12,2),
    "Notes" text
)
