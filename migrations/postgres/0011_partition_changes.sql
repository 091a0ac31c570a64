-- Large tables: `changes` hash-partitioned by document (16 partitions), so each
-- document's rows live in one partition of a sixteenth of the table, and indexes, vacuum and
-- the planner work per partition. Existing rows move in, keeping their seq_no; the identity
-- sequence continues after the highest.
--
-- A partitioned table's unique constraints must include the partition key: the primary key
-- becomes (document_id, seq_no) (it was seq_no alone, and is also the index every per-document
-- read uses; seq_no stays unique, taken from the one sequence), and changes_by_seq_no serves the
-- reads in commit order across documents (backups, catch-up). Every query on this table is
-- EXPLAINed against it in crates/server/tests/partitions.rs.
ALTER TABLE changes RENAME TO changes_unpartitioned;
ALTER TABLE changes_unpartitioned RENAME CONSTRAINT changes_pkey TO changes_unpartitioned_pkey;
ALTER TABLE changes_unpartitioned
    RENAME CONSTRAINT changes_document_id_hash_key TO changes_unpartitioned_document_id_hash_key;
ALTER TABLE changes_unpartitioned
    RENAME CONSTRAINT changes_document_id_fkey TO changes_unpartitioned_document_id_fkey;
ALTER INDEX changes_by_document RENAME TO changes_unpartitioned_by_document;
ALTER SEQUENCE changes_seq_no_seq RENAME TO changes_unpartitioned_seq_no_seq;

CREATE TABLE changes (
    -- Global commit order: a cursor for catch-up and cross-replica fan-out.
    seq_no       BIGINT GENERATED ALWAYS AS IDENTITY,
    document_id  TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    hash         BYTEA NOT NULL CHECK (length(hash) = 32),
    actor        BYTEA NOT NULL,
    seq          BIGINT NOT NULL CHECK (seq > 0),
    deps         BYTEA NOT NULL CHECK (length(deps) % 32 = 0),  -- concatenated 32-byte hashes
    bytes        BYTEA NOT NULL,                                 -- the encoded change
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, seq_no),
    UNIQUE (document_id, hash)
) PARTITION BY HASH (document_id);
CREATE TABLE changes_p00 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 0);
CREATE TABLE changes_p01 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 1);
CREATE TABLE changes_p02 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 2);
CREATE TABLE changes_p03 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 3);
CREATE TABLE changes_p04 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 4);
CREATE TABLE changes_p05 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 5);
CREATE TABLE changes_p06 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 6);
CREATE TABLE changes_p07 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 7);
CREATE TABLE changes_p08 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 8);
CREATE TABLE changes_p09 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 9);
CREATE TABLE changes_p10 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 10);
CREATE TABLE changes_p11 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 11);
CREATE TABLE changes_p12 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 12);
CREATE TABLE changes_p13 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 13);
CREATE TABLE changes_p14 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 14);
CREATE TABLE changes_p15 PARTITION OF changes FOR VALUES WITH (MODULUS 16, REMAINDER 15);
CREATE INDEX changes_by_seq_no ON changes (seq_no);

INSERT INTO changes (seq_no, document_id, hash, actor, seq, deps, bytes, received_at)
    OVERRIDING SYSTEM VALUE
    SELECT seq_no, document_id, hash, actor, seq, deps, bytes, received_at
    FROM changes_unpartitioned;
SELECT setval(pg_get_serial_sequence('changes', 'seq_no'),
              COALESCE((SELECT max(seq_no) FROM changes), 1),
              (SELECT max(seq_no) FROM changes) IS NOT NULL);
DROP TABLE changes_unpartitioned;
ANALYZE changes;
