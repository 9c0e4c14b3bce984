WITH newest AS MATERIALIZED (
    SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1)
SELECT s.i FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY AS s("pgsink.commit", "pgsink.lsn", "Order Id", "region", i)
 WHERE NOT ((s."pgsink.commit", s."pgsink.lsn") > ALL (SELECT commit_lsn, lsn FROM newest)
        OR (NOT EXISTS (SELECT FROM "pgsink"."tombstones" AS tb
                        WHERE tb.target = $1 AND tb.key = jsonb_build_array(s."Order Id", s."region")
                          AND NOT (tb.commit_lsn, tb.lsn) < (s."pgsink.commit", s."pgsink.lsn"))
       AND NOT EXISTS (SELECT FROM "pgsink"."tombstones" AS tb
                        WHERE tb.target = $1 AND tb.key = 'null'::jsonb
                          AND NOT (tb.commit_lsn, tb.lsn) < (s."pgsink.commit", s."pgsink.lsn"))))
