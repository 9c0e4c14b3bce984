WITH fresh AS (
    INSERT INTO "pgsink"."outbox_events" AS l (target, event_id, topic, partition, "offset")
    SELECT $1, s."pgsink.event", $2, $3, s."pgsink.offset"
      FROM "pg_temp"."pgsink_outbox_66af7b26c390e76b" AS s
    ON CONFLICT (target, event_id) DO NOTHING
    RETURNING l.event_id
), latest AS (
    SELECT DISTINCT ON ("Order Id") *
      FROM (SELECT s."pgsink.offset", s."Order Id"::text AS "Order Id"
              FROM "pg_temp"."pgsink_outbox_66af7b26c390e76b" AS s
              JOIN fresh AS f ON f.event_id = s."pgsink.event") AS e
     ORDER BY "Order Id", "pgsink.offset" DESC
), written AS (
    INSERT INTO "App ""Prod"""."Order; DROP TABLE x" AS t ("Order Id")
    SELECT "Order Id" FROM latest
    ON CONFLICT ("Order Id") DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM fresh), (SELECT count(*) FROM written)
