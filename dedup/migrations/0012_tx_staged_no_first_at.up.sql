-- The resolver's idle check (data whose END never comes) found a
-- transaction by its record at total_order 1 through this index; a
-- transaction that starts with a logical decoding message, which pgsink
-- does not stage, has no such record, and an application emitting one at
-- the start of every transaction turned the check off. It now finds each
-- transaction's first staged record by skipping through the primary key
-- (dedup.Transactions.OldestStaged), and nothing else reads this index, so
-- staging no longer writes it (docs/transactions.md, Tables).
DROP INDEX tx_staged_first_at;
