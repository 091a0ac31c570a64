-- Same contract as postgres/0009_maintenance_leases.sql, in SQLite's dialect.
CREATE TABLE maintenance_leases (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('backup')),
    holder    TEXT NOT NULL,
    until_ms  INTEGER NOT NULL
) STRICT;
