-- Pin replication (crates/server/src/pinning/set.rs): a file is `pinned` when the configured
-- number of backends (`--pin-replicas`) hold it. `copies` is what the last attempt found on
-- each backend, a JSON array of {"backend", "status", "error"} (NULL before any attempt), so
-- the file info can show every backend's state.
ALTER TABLE pins ADD COLUMN copies TEXT;
