SELECT count(*) FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
 WHERE s."pgsink.op" = 'u' AND s."pgsink.mask" = $1
   AND NOT EXISTS (SELECT FROM "App ""Prod"""."Order; DROP TABLE x" AS t WHERE t."Order Id" = s."Order Id" AND t."region" = s."region")
