WITH newest AS MATERIALIZED (
    SELECT coalesce(v.commit_lsn, '-9223372036854775808'::bigint) AS commit_lsn, coalesce(v.lsn, '-9223372036854775808'::bigint) AS lsn
      FROM (SELECT) AS one LEFT JOIN LATERAL (SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1) AS v ON true)
SELECT s.i FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS s("pgsink.commit", "pgsink.lsn", i)
 WHERE NOT (s."pgsink.commit", s."pgsink.lsn") > (SELECT commit_lsn, lsn FROM newest)
