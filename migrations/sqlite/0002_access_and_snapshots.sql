-- Same contract as postgres/0002_access_and_snapshots.sql, in SQLite's dialect.
ALTER TABLE documents ADD COLUMN owner TEXT;

CREATE TABLE document_members (
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('writer', 'reader')),
    granted_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (document_id, user_id)
) STRICT;
CREATE INDEX document_members_by_user ON document_members (user_id);

CREATE TABLE snapshots (
    document_id  TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    upto_seq_no  INTEGER NOT NULL,
    bytes        BLOB NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
