//! Reading a whole database for `cairn verify`: every change row with all its columns,
//! snapshots, file contents and their block claims, pins and upload sessions, page by page
//! (keyset pagination, so memory stays bounded), inside one read-only snapshot so a live
//! deployment is checked as of one moment. And the cross-table checks that are plain SQL.
//!
//! The SQL is the same in both backends; only how the snapshot begins differs.

use async_trait::async_trait;

use super::StoreError;

/// A change row, every column.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangeRecord {
    pub document_id: String,
    pub seq_no: i64,
    pub hash: Vec<u8>,
    pub actor: Vec<u8>,
    pub seq: i64,
    pub deps: Vec<u8>,
    pub bytes: Vec<u8>,
}

/// A file content row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ContentRecord {
    pub cid: String,
    pub size: i64,
    pub dag_size: i64,
}

/// A database read as of one moment (see the module docs).
#[async_trait]
pub trait Inspection: Send {
    /// Up to `limit` change rows after `(document, seq_no)`, by document then `seq_no`.
    async fn changes(
        &mut self,
        after: (&str, i64),
        limit: i64,
    ) -> Result<Vec<ChangeRecord>, StoreError>;

    /// Up to `limit` snapshots of documents after `document`: document, `upto_seq_no`, bytes.
    async fn snapshots(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64, Vec<u8>)>, StoreError>;

    /// Up to `limit` file contents after `cid`, by CID.
    async fn contents(&mut self, after: &str, limit: i64)
    -> Result<Vec<ContentRecord>, StoreError>;

    /// The claims `(content, digest)` of contents `first..=last`, by content.
    async fn claims(
        &mut self,
        first: &str,
        last: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Blocks waiting to be deleted (hex digests).
    async fn block_candidates(&mut self) -> Result<Vec<String>, StoreError>;

    /// Every pin row: CID and status.
    async fn pins(&mut self) -> Result<Vec<(String, String)>, StoreError>;

    /// Every upload session: id, durable bytes received, size.
    async fn uploads(&mut self) -> Result<Vec<(String, i64, i64)>, StoreError>;

    /// Rows in each table of `tables`.
    async fn count(&mut self, table: &'static str) -> Result<i64, StoreError>;

    /// The cross-table checks of [`CHECKS`]: for each, what it found (at most 100 rows).
    async fn check(&mut self) -> Result<Vec<(&'static str, Vec<String>)>, StoreError>;
}

/// Opens an [`Inspection`].
#[async_trait]
pub trait InspectStore: Send + Sync + 'static {
    async fn inspect(&self) -> Result<Box<dyn Inspection>, StoreError>;
}

pub(super) const CHANGES: &str = "SELECT document_id, seq_no, hash, actor, seq, deps, bytes
     FROM changes WHERE (document_id, seq_no) > ($1, $2)
     ORDER BY document_id, seq_no LIMIT $3";
pub(super) const SNAPSHOTS: &str = "SELECT document_id, upto_seq_no, bytes FROM snapshots
     WHERE document_id > $1 ORDER BY document_id LIMIT $2";
pub(super) const CONTENTS: &str = "SELECT cid, size, dag_size FROM file_contents
     WHERE cid > $1 ORDER BY cid LIMIT $2";
pub(super) const CLAIMS: &str = "SELECT content_cid, digest FROM content_blocks
     WHERE content_cid >= $1 AND content_cid <= $2 ORDER BY content_cid, digest";
pub(super) const BLOCK_CANDIDATES: &str = "SELECT digest FROM block_gc ORDER BY digest";
pub(super) const PINS: &str = "SELECT cid, status FROM pins ORDER BY cid";
pub(super) const UPLOADS: &str = "SELECT id, received, size FROM uploads ORDER BY id";

/// Cross-table invariants as SQL: each query returns a description of every row that breaks
/// it (at most 100). Foreign keys already enforce some of these on a live database; a backup
/// or a damaged database is checked all the same.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "a file references a content that is not stored",
        "SELECT f.owner || ' ' || f.cid FROM files f
         WHERE NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.cid = f.cid) LIMIT 100",
    ),
    (
        "a document attaches a content that is not stored",
        "SELECT r.document_id || ' ' || r.cid FROM file_refs r
         WHERE NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.cid = r.cid) LIMIT 100",
    ),
    (
        "an attachment names a document that does not exist",
        "SELECT r.document_id || ' ' || r.cid FROM file_refs r
         WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = r.document_id) LIMIT 100",
    ),
    (
        "a pin names a content that is not stored",
        "SELECT p.cid FROM pins p
         WHERE NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.cid = p.cid) LIMIT 100",
    ),
    (
        "a content's blocks are not listed (garbage collection could take them)",
        "SELECT c.cid FROM file_contents c
         WHERE NOT EXISTS (SELECT 1 FROM content_blocks b WHERE b.content_cid = c.cid) LIMIT 100",
    ),
    (
        "a content nobody references is not awaiting collection (it would never be collected)",
        "SELECT c.cid FROM file_contents c
         WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.cid = c.cid)
           AND NOT EXISTS (SELECT 1 FROM gc_candidates g WHERE g.cid = c.cid) LIMIT 100",
    ),
    (
        "a change belongs to a document that does not exist",
        "SELECT DISTINCT c.document_id FROM changes c
         WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = c.document_id) LIMIT 100",
    ),
    (
        "a snapshot belongs to a document that does not exist",
        "SELECT s.document_id FROM snapshots s
         WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = s.document_id) LIMIT 100",
    ),
    (
        "a member belongs to a document that does not exist",
        "SELECT m.document_id || ' ' || m.user_id FROM document_members m
         WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = m.document_id) LIMIT 100",
    ),
    (
        "a snapshot covers change rows that do not exist",
        "SELECT s.document_id FROM snapshots s
         WHERE s.upto_seq_no > 0 AND NOT EXISTS (
             SELECT 1 FROM changes c WHERE c.document_id = s.document_id
               AND c.seq_no >= s.upto_seq_no) LIMIT 100",
    ),
    (
        "an upload session has received more than its size",
        "SELECT u.id FROM uploads u WHERE u.received < 0 OR u.received > u.size LIMIT 100",
    ),
];

/// `impl InspectStore for $store` (with a `pool`) whose snapshot starts with `$begin`, and
/// `impl Inspection for $inspection` (with a `tx` field).
macro_rules! inspect_store {
    ($store:ty, $inspection:ident, $db:ty, $begin:expr) => {
        struct $inspection {
            tx: sqlx::Transaction<'static, $db>,
        }

        #[async_trait::async_trait]
        impl $crate::store::inspect::InspectStore for $store {
            async fn inspect(
                &self,
            ) -> Result<Box<dyn $crate::store::inspect::Inspection>, $crate::store::StoreError>
            {
                let tx = self.pool.begin_with($begin).await?;
                Ok(Box::new($inspection { tx }))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::inspect::Inspection for $inspection {
            async fn changes(
                &mut self,
                after: (&str, i64),
                limit: i64,
            ) -> Result<Vec<$crate::store::inspect::ChangeRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::inspect::CHANGES)
                    .bind(after.0)
                    .bind(after.1)
                    .bind(limit)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn snapshots(
                &mut self,
                after: &str,
                limit: i64,
            ) -> Result<Vec<(String, i64, Vec<u8>)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::inspect::SNAPSHOTS)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn contents(
                &mut self,
                after: &str,
                limit: i64,
            ) -> Result<Vec<$crate::store::inspect::ContentRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::inspect::CONTENTS)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn claims(
                &mut self,
                first: &str,
                last: &str,
            ) -> Result<Vec<(String, String)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::inspect::CLAIMS)
                    .bind(first)
                    .bind(last)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn block_candidates(&mut self) -> Result<Vec<String>, $crate::store::StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as($crate::store::inspect::BLOCK_CANDIDATES)
                    .fetch_all(&mut *self.tx)
                    .await?;
                Ok(rows.into_iter().map(|(d,)| d).collect())
            }

            async fn pins(&mut self) -> Result<Vec<(String, String)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::inspect::PINS)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn uploads(
                &mut self,
            ) -> Result<Vec<(String, i64, i64)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::inspect::UPLOADS)
                    .fetch_all(&mut *self.tx)
                    .await?)
            }

            async fn count(
                &mut self,
                table: &'static str,
            ) -> Result<i64, $crate::store::StoreError> {
                let (n,): (i64,) =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                        .fetch_one(&mut *self.tx)
                        .await?;
                Ok(n)
            }

            async fn check(
                &mut self,
            ) -> Result<Vec<(&'static str, Vec<String>)>, $crate::store::StoreError> {
                let mut found = Vec::new();
                for (what, sql) in $crate::store::inspect::CHECKS {
                    let rows: Vec<(String,)> =
                        sqlx::query_as(*sql).fetch_all(&mut *self.tx).await?;
                    found.push((*what, rows.into_iter().map(|(r,)| r).collect()));
                }
                Ok(found)
            }
        }
    };
}
pub(super) use inspect_store;
