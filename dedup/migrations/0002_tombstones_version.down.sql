DROP INDEX tombstones_version;
