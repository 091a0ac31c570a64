-- Same contract as postgres/0005_pins.sql, in SQLite's dialect.
CREATE TABLE pins (
    cid              TEXT PRIMARY KEY REFERENCES file_contents (cid),
    status           TEXT NOT NULL CHECK (status IN ('queued', 'pinning', 'pinned', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    lease_until_ms   INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    updated_ms       INTEGER NOT NULL
) STRICT;
CREATE INDEX pins_due ON pins (status, next_attempt_ms);
