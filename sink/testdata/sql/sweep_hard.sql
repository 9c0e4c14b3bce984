WITH swept AS (
    DELETE FROM "App ""Prod"""."Order; DROP TABLE x" AS t
     WHERE (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < ($1, $2)
     RETURNING jsonb_build_array(t."Order Id", t."region") AS key),
ledgered AS (
    INSERT INTO "pgsink"."tombstones" AS tb (target, key, commit_lsn, lsn)
    SELECT $4, swept.key, $1, $3 FROM swept
ON CONFLICT (target, key) DO UPDATE
   SET commit_lsn = excluded.commit_lsn, lsn = excluded.lsn, deleted_at = now()
 WHERE (tb.commit_lsn, tb.lsn) < (excluded.commit_lsn, excluded.lsn))
SELECT count(*) FROM swept
