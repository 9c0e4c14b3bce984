WITH newest AS MATERIALIZED (
    SELECT coalesce(v.commit_lsn, '-9223372036854775808'::bigint) AS commit_lsn, coalesce(v.lsn, '-9223372036854775808'::bigint) AS lsn
      FROM (SELECT) AS one LEFT JOIN LATERAL (SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1) AS v ON true),
truncated AS MATERIALIZED (
    SELECT coalesce(v.commit_lsn, '-9223372036854775808'::bigint) AS commit_lsn, coalesce(v.lsn, '-9223372036854775808'::bigint) AS lsn
      FROM (SELECT) AS one LEFT JOIN LATERAL (SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     WHERE tb.target = $2 AND tb.key = 'null'::jsonb) AS v ON true),
tested AS MATERIALIZED (
    SELECT min(s."pgsink.commit") AS oldest, least(count(*), 2048) AS n FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s WHERE s."pgsink.op" = 'u' AND s."pgsink.mask" = $1),
recent AS MATERIALIZED (
    SELECT tb.key FROM "pgsink"."tombstones" AS tb
     WHERE tb.commit_lsn >= (SELECT oldest FROM tested)
     ORDER BY tb.commit_lsn, tb.lsn LIMIT 2048)
INSERT INTO "App ""Prod"""."Order; DROP TABLE x" AS t ("Order Id", "region", "amount", "Notes", "_pgsink_commit_lsn", "_pgsink_lsn")
SELECT s."Order Id", s."region", s."amount", s."Notes", s."pgsink.commit", s."pgsink.lsn"
  FROM (SELECT * FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
         WHERE s."pgsink.op" = 'u' AND s."pgsink.mask" = $1
           AND coalesce(current_setting('pgsink.updated', true)::bigint, -1) < $3
           AND NOT EXISTS (SELECT FROM "App ""Prod"""."Order; DROP TABLE x" AS t WHERE t."Order Id" = s."Order Id" AND t."region" = s."region"
                              AND NOT (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < (s."pgsink.commit", s."pgsink.lsn"))
        OFFSET 0) AS s
 WHERE true
   AND ((s."pgsink.commit", s."pgsink.lsn") > (SELECT commit_lsn, lsn FROM newest)
        OR ((s."pgsink.commit", s."pgsink.lsn") > (SELECT commit_lsn, lsn FROM truncated)
            AND (((SELECT count(*) FROM (SELECT FROM recent LIMIT (SELECT n FROM tested)) AS w) < (SELECT n FROM tested)
                  AND jsonb_build_array(s."Order Id", s."region") NOT IN (SELECT key FROM recent))
                 OR NOT EXISTS (SELECT FROM "pgsink"."tombstones" AS tb
                                WHERE tb.target = $2 AND tb.key = jsonb_build_array(s."Order Id", s."region")
                                  AND NOT (tb.commit_lsn, tb.lsn) < (s."pgsink.commit", s."pgsink.lsn")))))
ON CONFLICT ("Order Id", "region") DO UPDATE
   SET "amount" = excluded."amount", "Notes" = excluded."Notes", "_pgsink_commit_lsn" = excluded."_pgsink_commit_lsn", "_pgsink_lsn" = excluded."_pgsink_lsn"
 WHERE (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < (excluded."_pgsink_commit_lsn", excluded."_pgsink_lsn")
