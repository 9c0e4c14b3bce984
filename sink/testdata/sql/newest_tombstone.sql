SELECT n.commit_lsn, n.lsn FROM (SELECT) AS one
  LEFT JOIN LATERAL (SELECT tb.commit_lsn, tb.lsn FROM "pgsink"."tombstones" AS tb
                     ORDER BY tb.commit_lsn DESC, tb.lsn DESC LIMIT 1) AS n ON true
