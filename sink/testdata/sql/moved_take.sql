WITH moved AS MATERIALIZED (
    SELECT m.kept, m.new_key FROM "pgsink"."moved_rows" AS m
     WHERE m.target = $1 AND m.key = jsonb_build_array($2::bigint, $3::text) AND m.commit_lsn = $4::bigint AND m.lsn = $5::bigint),
source AS MATERIALIZED (
    SELECT coalesce((SELECT kept FROM moved),
                    (SELECT to_jsonb(o) FROM "App ""Prod"""."Order; DROP TABLE x" AS o
                      WHERE o."Order Id" = $2::bigint AND o."region" = $3::text
                        AND (coalesce(o."_pgsink_commit_lsn", -1), coalesce(o."_pgsink_lsn", -1)) < ($4::bigint, $5::bigint))) AS kept),
filled AS (
    UPDATE "App ""Prod"""."Order; DROP TABLE x" AS n
       SET "Notes" = k."Notes"
      FROM source CROSS JOIN LATERAL jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", source.kept) AS k
     WHERE source.kept IS NOT NULL AND n."Order Id" = $6::bigint AND n."region" = $7::text
       AND n."_pgsink_commit_lsn" = $8::bigint AND n."_pgsink_lsn" = $9::bigint
    RETURNING 1),
noted AS (
    INSERT INTO "pgsink"."moved_rows" AS m (target, key, commit_lsn, lsn, new_key, new_commit_lsn, new_lsn, awaiting, copied)
    SELECT $1, jsonb_build_array($2::bigint, $3::text), $4::bigint, $5::bigint, jsonb_build_array($6::bigint, $7::text), $8::bigint, $9::bigint, $10::text[],
           (SELECT jsonb_object_agg(a, source.kept -> a) FROM unnest($10::text[]) AS a)
      FROM source
     WHERE NOT EXISTS (SELECT FROM moved WHERE new_key IS NOT NULL) OR EXISTS (SELECT FROM filled)
    ON CONFLICT (target, key, commit_lsn, lsn) DO UPDATE
       SET new_key = excluded.new_key, new_commit_lsn = excluded.new_commit_lsn, new_lsn = excluded.new_lsn,
           awaiting = excluded.awaiting, copied = excluded.copied
    RETURNING 1)
SELECT (SELECT kept IS NOT NULL FROM source), EXISTS (SELECT FROM moved), (SELECT count(*) FROM filled), (SELECT count(*) FROM noted)
