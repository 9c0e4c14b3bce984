WITH RECURSIVE chain (key, commit_lsn, lsn, new_key, new_commit_lsn, new_lsn, kept_cols, kept_copied, cols, copied, source, depth) AS (
    SELECT m.key, m.commit_lsn, m.lsn, m.new_key, m.new_commit_lsn, m.new_lsn, NULL::text[], NULL::jsonb, m.awaiting, m.copied, m.kept, 0
      FROM "pg_temp"."pgsink_stage_87a23aa6581d77d5" AS s
      JOIN "pgsink"."moved_rows" AS m ON m.target = $1 AND m.key = jsonb_build_array(s."Order Id", s."region")
       AND m.commit_lsn = s."pgsink.commit" AND m.lsn = s."pgsink.lsn"
     WHERE s."pgsink.op" = 'd' AND s."pgsink.mask" = 1
       AND m.kept IS NOT NULL AND m.awaiting IS NOT NULL
    UNION ALL
    SELECT m.key, m.commit_lsn, m.lsn, m.new_key, m.new_commit_lsn, m.new_lsn, c.cols, c.copied,
           ARRAY(SELECT a FROM unnest(c.cols) AS a
                  WHERE a = ANY (coalesce(m.awaiting, '{}'))
                    AND coalesce(m.kept -> a, 'null') = coalesce(c.copied -> a, 'null')), m.copied, c.source, c.depth + 1
      FROM chain AS c
      JOIN "pgsink"."moved_rows" AS m ON m.target = $1 AND m.key = c.new_key
       AND ((jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", m.kept))."_pgsink_commit_lsn", (jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", m.kept))."_pgsink_lsn") >= (c.new_commit_lsn, c.new_lsn)
     WHERE cardinality(c.cols) > 0),
fixes AS (
    SELECT DISTINCT ON (key, commit_lsn, lsn) * FROM chain ORDER BY key, commit_lsn, lsn, depth DESC),
ledger_fixed AS (
    UPDATE "pgsink"."moved_rows" AS m
       SET kept = CASE WHEN cardinality(c.kept_cols) > 0
                  THEN m.kept || coalesce((SELECT jsonb_object_agg(a, c.source -> a) FROM unnest(c.kept_cols) AS a
                                           WHERE coalesce(m.kept -> a, 'null') = coalesce(c.kept_copied -> a, 'null')), '{}')
                  ELSE m.kept END,
           copied = coalesce(m.copied, '{}') || coalesce((SELECT jsonb_object_agg(a, c.source -> a) FROM unnest(c.cols) AS a
                                           WHERE coalesce(r.cur -> a, 'null') = coalesce(c.copied -> a, 'null')), '{}')
      FROM fixes AS c
      LEFT JOIN LATERAL (SELECT coalesce(
                          (SELECT to_jsonb(n) FROM "App ""Prod"""."Order; DROP TABLE x" AS n
                            WHERE n."Order Id" = (c.new_key ->> 0)::bigint AND n."region" = (c.new_key ->> 1)::text
                              AND (n."_pgsink_commit_lsn", n."_pgsink_lsn") >= (c.new_commit_lsn, c.new_lsn)),
                          (SELECT k.kept FROM "pgsink"."moved_rows" AS k
                            WHERE k.target = $1 AND k.key = c.new_key
                              AND ((jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", k.kept))."_pgsink_commit_lsn", (jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", k.kept))."_pgsink_lsn") >= (c.new_commit_lsn, c.new_lsn)
                            ORDER BY k.commit_lsn, k.lsn LIMIT 1)) AS cur) AS r ON true
     WHERE (cardinality(c.kept_cols) > 0 OR (cardinality(c.cols) > 0 AND r.cur IS NOT NULL))
       AND m.target = $1 AND m.key = c.key AND m.commit_lsn = c.commit_lsn AND m.lsn = c.lsn
    RETURNING 1)
UPDATE "App ""Prod"""."Order; DROP TABLE x" AS n
   SET "amount" = CASE WHEN $2::text = ANY (c.cols)
                AND coalesce(to_jsonb(n."amount"), 'null') = coalesce(c.copied -> $2::text, 'null')
           THEN k."amount" ELSE n."amount" END,
       "Notes" = CASE WHEN $3::text = ANY (c.cols)
                AND coalesce(to_jsonb(n."Notes"), 'null') = coalesce(c.copied -> $3::text, 'null')
           THEN k."Notes" ELSE n."Notes" END
  FROM fixes AS c
 CROSS JOIN LATERAL jsonb_populate_record(NULL::"App ""Prod"""."Order; DROP TABLE x", c.source) AS k
 WHERE cardinality(c.cols) > 0
   AND n."Order Id" = (c.new_key ->> 0)::bigint AND n."region" = (c.new_key ->> 1)::text
   AND (n."_pgsink_commit_lsn", n."_pgsink_lsn") >= (c.new_commit_lsn, c.new_lsn)
