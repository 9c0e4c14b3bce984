WITH updated AS (
UPDATE "App ""Prod"""."Order; DROP TABLE x" AS t
   SET "amount" = s."amount", "_pgsink_commit_lsn" = s."pgsink.commit", "_pgsink_lsn" = s."pgsink.lsn"
  FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
 WHERE s."pgsink.op" = 'u' AND s."pgsink.mask" = $1
   AND t."Order Id" = s."Order Id" AND t."region" = s."region"
   AND (t."_pgsink_commit_lsn", t."_pgsink_lsn") < (s."pgsink.commit", s."pgsink.lsn")
RETURNING 1)
SELECT count(*), set_config('pgsink.updated', count(*)::text, true) FROM updated
