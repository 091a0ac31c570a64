-- Same contract as postgres/0003_files.sql, in SQLite's dialect.
CREATE TABLE file_contents (
    cid         TEXT PRIMARY KEY,
    size        INTEGER NOT NULL CHECK (size >= 0),
    dag_size    INTEGER NOT NULL CHECK (dag_size >= 0),
    created_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE files (
    owner         TEXT NOT NULL,
    cid           TEXT NOT NULL REFERENCES file_contents (cid),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (owner, cid)
) STRICT;
CREATE INDEX files_by_owner_newest ON files (owner, created_ms DESC, cid DESC);
CREATE INDEX files_by_cid ON files (cid);
