WITH swept AS (
    UPDATE "App ""Prod"""."Order; DROP TABLE x" AS t
       SET "__deleted" = true, "_pgsink_commit_lsn" = $1, "_pgsink_lsn" = $3
     WHERE (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < ($1, $2) AND t."__deleted" IS DISTINCT FROM true
     RETURNING 1)
SELECT count(*) FROM swept
