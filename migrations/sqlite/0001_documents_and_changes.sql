-- Same contract as postgres/0001_documents_and_changes.sql, in SQLite's dialect.
CREATE TABLE documents (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE changes (
    seq_no       INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    hash         BLOB NOT NULL CHECK (length(hash) = 32),
    actor        BLOB NOT NULL,
    seq          INTEGER NOT NULL CHECK (seq > 0),
    deps         BLOB NOT NULL CHECK (length(deps) % 32 = 0),
    bytes        BLOB NOT NULL,
    received_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (document_id, hash)
) STRICT;

CREATE INDEX changes_by_document ON changes (document_id, seq_no);
