DROP TABLE consistency_modes;
DROP TABLE tx_resolved;
DROP TABLE tx_staged;
