-- Access control and compacted snapshots.

-- The user (JWT `sub`) who created the document. Documents from before access control
-- (none in any release) have no owner and are reachable by nobody.
ALTER TABLE documents ADD COLUMN owner TEXT;

-- Users other than the owner who may write (and read) or only read a document.
CREATE TABLE document_members (
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('writer', 'reader')),
    granted_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, user_id)
);
CREATE INDEX document_members_by_user ON document_members (user_id);

-- The newest compacted snapshot of a document: Automerge's saved form of every change with
-- seq_no <= upto_seq_no. Loading reads it and the changes after it. Change rows are kept.
CREATE TABLE snapshots (
    document_id  TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    upto_seq_no  BIGINT NOT NULL,
    bytes        BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
