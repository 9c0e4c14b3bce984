-- The staged_at index held an entry per staged record, for one reader: the
-- resolver's search for the transaction staged longest ago whose END never
-- came (and status's). A transaction's record at total_order 1 (Debezium
-- counts from 1) stands for it there: one entry per source transaction,
-- written by one record in twenty in make bench-tx, instead of a second
-- index insert (and its WAL, and its vacuum) for every staged record
-- (docs/transactions.md, Cost).
DROP INDEX tx_staged_at;
CREATE INDEX tx_staged_first_at ON tx_staged (group_id, staged_at) WHERE total_order = 1;
