-- Leases that operations commands hold while they need the blockstore to stay as it is: a
-- running `cairn backup` holds one while it copies blocks, and garbage collection deletes no
-- block while any unexpired lease exists (crates/server/src/ops/backup.rs). A backup that
-- dies leaves a lease that expires by itself; the holder renews it while it works.
CREATE TABLE maintenance_leases (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('backup')),
    holder    TEXT NOT NULL,       -- host and process, for operators
    until_ms  BIGINT NOT NULL
);
