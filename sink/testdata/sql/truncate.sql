DELETE FROM "App ""Prod"""."Order; DROP TABLE x" AS t
 WHERE (coalesce(t."_pgsink_commit_lsn", -1), coalesce(t."_pgsink_lsn", -1)) < ($1, $2)
