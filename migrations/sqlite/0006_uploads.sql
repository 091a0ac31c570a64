-- Same contract as postgres/0006_uploads.sql, in SQLite's dialect.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    cid           TEXT NOT NULL,
    size          INTEGER NOT NULL CHECK (size >= 0),
    received      INTEGER NOT NULL DEFAULT 0,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX uploads_by_owner ON uploads (owner);
