-- A document is the union of its stored Automerge changes. Changes are only ever inserted
-- (idempotently, by hash), so concurrent writers can never overwrite each other.
CREATE TABLE documents (
    id          TEXT PRIMARY KEY,                  -- automerge-repo id (bs58check of 16 bytes)
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE changes (
    -- Global commit order: a cursor for catch-up and cross-replica fan-out.
    seq_no       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    hash         BYTEA NOT NULL CHECK (length(hash) = 32),
    actor        BYTEA NOT NULL,
    seq          BIGINT NOT NULL CHECK (seq > 0),
    deps         BYTEA NOT NULL CHECK (length(deps) % 32 = 0),  -- concatenated 32-byte hashes
    bytes        BYTEA NOT NULL,                                 -- the encoded change
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (document_id, hash)
);

CREATE INDEX changes_by_document ON changes (document_id, seq_no);
