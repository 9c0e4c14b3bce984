package catalog

// The catalog queries. Names arrive only as bound parameters. Each query
// takes the schema and table names, so that Read sends all four in one
// pipeline: one round trip per table instead of four, which a fleet of
// tables pays once each while the router holds its lock.

// schemaQuery returns the current role and, when the schema exists, its oid
// and the role's privileges on it (a LEFT JOIN, so that a missing schema
// still returns the role).
const schemaQuery = `
SELECT current_user::text,
       n.oid,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false),
       coalesce(has_schema_privilege(n.oid, 'CREATE'), false)
  FROM (SELECT 1) AS one
  LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1`

const tableQuery = `
SELECT c.oid, c.relkind::text,
       has_table_privilege(c.oid, 'SELECT'),
       has_table_privilege(c.oid, 'INSERT'),
       has_table_privilege(c.oid, 'UPDATE'),
       has_table_privilege(c.oid, 'DELETE'),
       has_table_privilege(c.oid, 'TRUNCATE')
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2`

// relationOID is the table's oid from its names ($1, $2), for the queries
// that read its columns and keys: none when it does not exist.
const relationOID = `(SELECT c.oid
                      FROM pg_catalog.pg_class c
                      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND c.relname = $2)`

const columnsQuery = `
SELECT a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.atttypid,
       a.attnotnull,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       a.attidentity::text,
       a.attgenerated <> '',
       a.attndims::int,
       coalesce(e.typtype, t.typtype)::text
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  -- A true array is of variable length; point and name, which also have an
  -- element type, are not arrays.
  LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typlen = -1
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = ` + relationOID + `
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum`

// keysQuery lists the primary key and the unique indexes that ON CONFLICT
// can use: valid, not deferrable (indimmediate), without predicate or
// expression; INCLUDE columns (past indnkeyatts) are not part of the key.
const keysQuery = `
SELECT i.indisprimary,
       array_agg(a.attname::text ORDER BY k.ord)
  FROM pg_catalog.pg_index i
 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = ` + relationOID + `
   AND (i.indisprimary OR i.indisunique)
   AND i.indisvalid AND i.indimmediate
   AND i.indpred IS NULL AND i.indexprs IS NULL
   AND k.ord <= i.indnkeyatts
 GROUP BY i.indexrelid, i.indisprimary
 ORDER BY i.indisprimary DESC, i.indexrelid`
