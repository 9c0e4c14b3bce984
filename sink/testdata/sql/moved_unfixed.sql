SELECT count(*)
  FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
  JOIN "pgsink"."moved_rows" AS m ON m.target = $1 AND m.key = jsonb_build_array(s."Order Id", s."region")
   AND m.commit_lsn = s."pgsink.commit" AND m.lsn = s."pgsink.lsn"
  JOIN "App ""Prod"""."Order; DROP TABLE x" AS n ON n."Order Id" = (m.new_key ->> 0)::bigint AND n."region" = (m.new_key ->> 1)::text
 WHERE s."pgsink.op" = 'd' AND s."pgsink.mask" = 1
   AND m.kept IS NOT NULL AND cardinality(m.awaiting) > 0
   AND (n."_pgsink_commit_lsn", n."_pgsink_lsn") > (m.new_commit_lsn, m.new_lsn)
