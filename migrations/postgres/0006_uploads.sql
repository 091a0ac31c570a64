-- Resumable uploads: a session per file being uploaded in pieces. The bytes received so far
-- are in `<data-dir>/uploads/<id>` on the server's disk; `received` counts the durable ones
-- (always whole chunks until the last). A session ends when its file is stored (or refused).
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,             -- random, unguessable
    owner         TEXT NOT NULL,
    cid           TEXT NOT NULL,                -- the CID the client declared
    size          BIGINT NOT NULL CHECK (size >= 0),
    received      BIGINT NOT NULL DEFAULT 0,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE INDEX uploads_by_owner ON uploads (owner);
