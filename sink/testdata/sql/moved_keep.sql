INSERT INTO "pgsink"."moved_rows" AS m (target, key, commit_lsn, lsn, kept)
SELECT $1, jsonb_build_array(s."Order Id", s."region"), s."pgsink.commit", s."pgsink.lsn", to_jsonb(t)
  FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
  LEFT JOIN "App ""Prod"""."Order; DROP TABLE x" AS t ON t."Order Id" = s."Order Id" AND t."region" = s."region"
   AND (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < (s."pgsink.commit", s."pgsink.lsn")
 WHERE s."pgsink.op" = 'd' AND s."pgsink.mask" = 1
ON CONFLICT (target, key, commit_lsn, lsn) DO UPDATE SET kept = coalesce(excluded.kept, m.kept)
RETURNING m.kept IS NULL AND m.awaiting IS NOT NULL
