-- Garbage collection of file contents nobody references any more (crates/server/src/gc.rs).
--
-- `content_blocks` lists the blocks (by sha2-256 digest, as the blockstore names them) each
-- content uses; an upload claims its blocks here before moving them into the blockstore, so
-- a block is deleted only when no claim names it. `gc_candidates` are contents whose last
-- reference went; `block_gc` blocks that may have become unused; `unpins` pins to remove
-- from the pinning backend once their content is gone.
CREATE TABLE content_blocks (
    content_cid  TEXT NOT NULL,
    digest       TEXT NOT NULL,
    claimed_ms   BIGINT NOT NULL,
    PRIMARY KEY (content_cid, digest)
);
CREATE INDEX content_blocks_by_digest ON content_blocks (digest);

CREATE TABLE gc_candidates (
    cid       TEXT PRIMARY KEY,
    since_ms  BIGINT NOT NULL
);

CREATE TABLE block_gc (
    digest    TEXT PRIMARY KEY,
    since_ms  BIGINT NOT NULL
);

CREATE TABLE unpins (
    cid              TEXT PRIMARY KEY,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    last_error       TEXT
);
