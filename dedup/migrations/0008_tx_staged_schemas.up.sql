-- tx_schemas: the schema half of the JsonConverter keys and values staged
-- in tx_staged, {"schema": S, "payload": P}, stored once per distinct S
-- (Debezium repeats one per table version on every record) under its
-- SHA-256. A staged row whose key_schema / value_schema is set keeps only
-- P in record_key / record_value; the resolver puts the record back
-- together, byte for byte, before decoding it. Rows staged before this
-- migration have both NULL and hold the whole record, as they did. No
-- foreign key: it would lock the schema's row for every staged record.
CREATE TABLE tx_schemas (
    digest    bytea       PRIMARY KEY,
    schema    bytea       NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tx_staged ADD COLUMN key_schema bytea, ADD COLUMN value_schema bytea;
