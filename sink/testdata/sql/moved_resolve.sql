UPDATE "App ""Prod"""."Order; DROP TABLE x" AS n
   SET "amount" = CASE WHEN $2::text = ANY (m.awaiting) THEN k."amount" ELSE n."amount" END,
       "Notes" = CASE WHEN $3::text = ANY (m.awaiting) THEN k."Notes" ELSE n."Notes" END
  FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
  JOIN "pgsink"."moved_rows" AS m ON m.target = $1 AND m.key = jsonb_build_array(s."Order Id", s."region")
   AND m.commit_lsn = s."pgsink.commit" AND m.lsn = s."pgsink.lsn"
 CROSS JOIN LATERAL jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", m.kept) AS k
 WHERE s."pgsink.op" = 'd' AND s."pgsink.mask" = 1
   AND m.kept IS NOT NULL AND m.awaiting IS NOT NULL
   AND n."Order Id" = (m.new_key ->> 0)::bigint AND n."region" = (m.new_key ->> 1)::text
   AND n."_pgsink_commit_lsn" = m.new_commit_lsn AND n."_pgsink_lsn" = m.new_lsn
