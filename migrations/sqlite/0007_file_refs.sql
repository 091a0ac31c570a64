-- Same contract as postgres/0007_file_refs.sql, in SQLite's dialect.
CREATE TABLE file_refs (
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    cid          TEXT NOT NULL REFERENCES file_contents (cid),
    added_by     TEXT NOT NULL,
    added_ms     INTEGER NOT NULL,
    PRIMARY KEY (document_id, cid)
) STRICT;
CREATE INDEX file_refs_by_cid ON file_refs (cid);
