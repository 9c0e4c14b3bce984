WITH fresh AS (
    INSERT INTO "pgsink"."outbox_events" AS l (target, event_id, topic, partition, "offset")
    SELECT $1, s."pgsink.event", $2, $3, s."pgsink.offset"
      FROM "pg_temp"."pgsink_outbox_7aabd2f2e9a2a171" AS s
    ON CONFLICT (target, event_id) DO NOTHING
    RETURNING l.event_id
), latest AS (
    SELECT DISTINCT ON ("Order Id") *
      FROM (SELECT s."pgsink.offset", s."Order Id"::text AS "Order Id", s."amount"::numeric(12,2) AS "amount", s."Lines"::jsonb AS "Lines"
              FROM "pg_temp"."pgsink_outbox_7aabd2f2e9a2a171" AS s
              JOIN fresh AS f ON f.event_id = s."pgsink.event") AS e
     ORDER BY "Order Id", "pgsink.offset" DESC
), written AS (
    INSERT INTO "App ""Prod"""."Order; DROP TABLE x" AS t ("Order Id", "amount", "Lines")
    SELECT "Order Id", "amount", "Lines" FROM latest
    ON CONFLICT ("Order Id") DO UPDATE
       SET "amount" = excluded."amount", "Lines" = excluded."Lines"
    RETURNING 1
)
SELECT (SELECT count(*) FROM fresh), (SELECT count(*) FROM written)
