WITH newest AS MATERIALIZED (
    SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1)
INSERT INTO "App ""Prod"""."Order; DROP TABLE x" ("Order Id", "region", "amount", "Notes", "_pgsink_commit_lsn", "_pgsink_lsn", "__deleted")
SELECT s."Order Id", s."region", s."amount", s."Notes", s."pgsink.commit", s."pgsink.lsn", false
  FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
 WHERE s."pgsink.op" = 'i'
   AND ((s."pgsink.commit", s."pgsink.lsn") > ALL (SELECT commit_lsn, lsn FROM newest)
        OR (NOT EXISTS (SELECT FROM "pgsink"."tombstones" AS tb
                        WHERE tb.target = $1 AND tb.key = jsonb_build_array(s."Order Id", s."region")
                          AND NOT (tb.commit_lsn, tb.lsn) < (s."pgsink.commit", s."pgsink.lsn"))
       AND NOT EXISTS (SELECT FROM "pgsink"."tombstones" AS tb
                        WHERE tb.target = $1 AND tb.key = 'null'::jsonb
                          AND NOT (tb.commit_lsn, tb.lsn) < (s."pgsink.commit", s."pgsink.lsn"))))
