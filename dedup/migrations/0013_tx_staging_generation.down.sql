DROP TABLE tx_staging_partitions;
DROP TABLE tx_staging_marker;
DROP TABLE tx_staging_generation;
ALTER TABLE tx_staged SET LOGGED;
