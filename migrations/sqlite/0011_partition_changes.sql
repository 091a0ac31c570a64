-- Twin of postgres/0011_partition_changes.sql: SQLite has no table partitioning, and the
-- embedded default is one file on one machine, so `changes` stays one table with the same
-- columns. Nothing changes here.
SELECT 1;
