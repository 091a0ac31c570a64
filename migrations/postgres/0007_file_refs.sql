-- Documents reference files: a writer of a document attaches one of their files to it, and
-- everyone who may read the document may then read the file (the same access as the
-- document's). The reference names the file as its attacher stored it (name, type).
CREATE TABLE file_refs (
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    cid          TEXT NOT NULL REFERENCES file_contents (cid),
    added_by     TEXT NOT NULL,
    added_ms     BIGINT NOT NULL,
    PRIMARY KEY (document_id, cid)
);
CREATE INDEX file_refs_by_cid ON file_refs (cid);
