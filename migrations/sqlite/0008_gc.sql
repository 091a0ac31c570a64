-- Same contract as postgres/0008_gc.sql, in SQLite's dialect.
CREATE TABLE content_blocks (
    content_cid  TEXT NOT NULL,
    digest       TEXT NOT NULL,
    claimed_ms   INTEGER NOT NULL,
    PRIMARY KEY (content_cid, digest)
) STRICT;
CREATE INDEX content_blocks_by_digest ON content_blocks (digest);

CREATE TABLE gc_candidates (
    cid       TEXT PRIMARY KEY,
    since_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE block_gc (
    digest    TEXT PRIMARY KEY,
    since_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE unpins (
    cid              TEXT PRIMARY KEY,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    last_error       TEXT
) STRICT;
