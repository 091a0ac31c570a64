-- Files. The bytes are IPFS blocks in the server's blockstore; these rows say which file
-- contents exist (one row per root CID, whoever uploaded it) and who holds a reference to
-- each (one row per owner and CID). A content row without references is garbage to collect.
-- Times are Unix milliseconds set by the server, the same in both backends.
CREATE TABLE file_contents (
    cid         TEXT PRIMARY KEY,             -- root CID as uploaded (CIDv0 or CIDv1 string)
    size        BIGINT NOT NULL CHECK (size >= 0),      -- file bytes
    dag_size    BIGINT NOT NULL CHECK (dag_size >= 0),  -- every block (Kubo's cumulative size)
    created_ms  BIGINT NOT NULL
);

CREATE TABLE files (
    owner         TEXT NOT NULL,
    cid           TEXT NOT NULL REFERENCES file_contents (cid),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (owner, cid)
);
CREATE INDEX files_by_owner_newest ON files (owner, created_ms DESC, cid DESC);
CREATE INDEX files_by_cid ON files (cid);
