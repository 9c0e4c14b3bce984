DELETE FROM "App ""Prod"""."Order; DROP TABLE x" AS t
 USING "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
 WHERE s."pgsink.op" = 'd'
   AND t."Order Id" = s."Order Id" AND t."region" = s."region"
   AND (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < (s."pgsink.commit", s."pgsink.lsn")
