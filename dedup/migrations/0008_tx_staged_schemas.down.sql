-- Put the staged records back together, so that a pgsink of the previous
-- version applies them as it staged them.
UPDATE tx_staged s
   SET record_value = '{"schema":'::bytea || x.schema || ',"payload":'::bytea || s.record_value || '}'::bytea
  FROM tx_schemas x WHERE x.digest = s.value_schema;
UPDATE tx_staged s
   SET record_key = '{"schema":'::bytea || x.schema || ',"payload":'::bytea || s.record_key || '}'::bytea
  FROM tx_schemas x WHERE x.digest = s.key_schema;
ALTER TABLE tx_staged DROP COLUMN key_schema, DROP COLUMN value_schema;
DROP TABLE tx_schemas;
