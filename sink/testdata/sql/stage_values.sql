INSERT INTO "pg_temp"."pgsink_stage_87a23aa6581d77d5" ("pgsink.op", "pgsink.mask", "pgsink.commit", "pgsink.lsn", "Order Id", "region", "amount", "Notes") VALUES
    ($1, $2, $3, $4, $5, $6, $7, $8),
    ($9, $10, $11, $12, $13, $14, $15, $16)
