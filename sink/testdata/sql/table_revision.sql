SELECT a.attrelid::text || ':' || string_agg(a.attnum || '.' || a.atttypid || '.' || a.xmin, ',' ORDER BY a.attnum)
  FROM pg_catalog.pg_attribute AS a
 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
 GROUP BY a.attrelid
