-- The durable pin queue: one row per file content to keep pinned on IPFS. Uploads never
-- wait for IPFS: a row starts `queued`, a worker (on any replica) claims it as `pinning`
-- with a lease, and it ends `pinned`, or back in `queued` with a later `next_attempt_ms`
-- after a transient failure, or `failed` when the backend refused it for good.
CREATE TABLE pins (
    cid              TEXT PRIMARY KEY REFERENCES file_contents (cid),
    status           TEXT NOT NULL CHECK (status IN ('queued', 'pinning', 'pinned', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    lease_until_ms   BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    updated_ms       BIGINT NOT NULL
);
CREATE INDEX pins_due ON pins (status, next_attempt_ms);
