INSERT INTO "pgsink"."tombstones" AS tb (target, key, commit_lsn, lsn)
SELECT $1, jsonb_build_array(s."Order Id", s."region"), s."pgsink.commit", s."pgsink.lsn"
  FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
 WHERE s."pgsink.op" = 'd'
