WITH l AS (
    SELECT i.indexrelid AS oid, c.relname, i.indisprimary, i.indisunique,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING ', '') AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass
), s AS (
    SELECT c.relname, i.indisprimary, i.indisunique,
           regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING ', '') AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $2::regclass
), pairs AS (
    SELECT l.oid, l.relname AS live, s.relname AS shadow,
           count(*) OVER (PARTITION BY l.oid) AS twins, count(*) OVER (PARTITION BY s.relname) AS twins_back
      FROM l JOIN s USING (def, indisprimary, indisunique)
)
SELECT coalesce(array_agg(live), '{}'), coalesce(array_agg(shadow), '{}'), coalesce(array_agg(oid), '{}')
  FROM pairs WHERE twins = 1 AND twins_back = 1
