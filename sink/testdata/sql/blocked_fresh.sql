WITH newest AS MATERIALIZED (
    SELECT coalesce(v.commit_lsn, '-9223372036854775808'::bigint) AS commit_lsn, coalesce(v.lsn, '-9223372036854775808'::bigint) AS lsn
      FROM (SELECT) AS one LEFT JOIN LATERAL (SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1) AS v ON true),
truncated AS MATERIALIZED (
    SELECT coalesce(v.commit_lsn, '-9223372036854775808'::bigint) AS commit_lsn, coalesce(v.lsn, '-9223372036854775808'::bigint) AS lsn
      FROM (SELECT) AS one LEFT JOIN LATERAL (SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     WHERE tb.target = $1 AND tb.key = 'null'::jsonb) AS v ON true),
tested AS MATERIALIZED (
    SELECT min(c) AS oldest, least(count(*), 2048) AS n FROM unnest($2::bigint[]) AS c),
recent AS MATERIALIZED (
    SELECT tb.key FROM "pgsink"."tombstones" AS tb
     WHERE tb.commit_lsn >= (SELECT oldest FROM tested)
     ORDER BY tb.commit_lsn, tb.lsn LIMIT 2048)
SELECT s.i FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY AS s("pgsink.commit", "pgsink.lsn", "Order Id", "region", i)
 WHERE NOT ((s."pgsink.commit", s."pgsink.lsn") > (SELECT commit_lsn, lsn FROM newest)
        OR ((s."pgsink.commit", s."pgsink.lsn") > (SELECT commit_lsn, lsn FROM truncated)
            AND (((SELECT count(*) FROM (SELECT FROM recent LIMIT (SELECT n FROM tested)) AS w) < (SELECT n FROM tested)
                  AND jsonb_build_array(s."Order Id", s."region") NOT IN (SELECT key FROM recent))
                 OR NOT EXISTS (SELECT FROM "pgsink"."tombstones" AS tb
                                WHERE tb.target = $1 AND tb.key = jsonb_build_array(s."Order Id", s."region")
                                  AND NOT (tb.commit_lsn, tb.lsn) < (s."pgsink.commit", s."pgsink.lsn")))))
