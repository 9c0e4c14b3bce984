DROP TABLE moved_rows;
