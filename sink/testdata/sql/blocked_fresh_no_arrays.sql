WITH newest AS MATERIALIZED (
    SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1)
SELECT s.i FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS s("pgsink.commit", "pgsink.lsn", i)
 WHERE NOT (s."pgsink.commit", s."pgsink.lsn") > ALL (SELECT commit_lsn, lsn FROM newest)
