DROP TABLE tx_resolver_waits;
DROP TABLE tx_frontier;
