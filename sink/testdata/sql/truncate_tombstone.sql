INSERT INTO "pgsink"."tombstones" AS tb (target, key, commit_lsn, lsn)
VALUES ($1, 'null'::jsonb, $2, $3)
ON CONFLICT (target, key) DO UPDATE
   SET commit_lsn = excluded.commit_lsn, lsn = excluded.lsn, deleted_at = now()
 WHERE (tb.commit_lsn, tb.lsn) < (excluded.commit_lsn, excluded.lsn)
