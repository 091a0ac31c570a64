//! What garbage collection of file contents keeps in the database (migration 0008), under
//! the same contract in both backends; the collector itself is `crate::gc`.
//!
//! - A content's blocks are listed in `content_blocks` ("claims") before its blocks move into
//!   the blockstore, so a block is deleted only when no claim names it. Recording a file
//!   checks its content still has its claims (a collection may have taken an unreferenced
//!   content between an upload's claim and its record: that upload fails, retryably).
//! - A content whose last reference goes becomes a candidate (`gc_candidates`); a candidate
//!   still unreferenced after the grace period is removed with its pin (queued in `unpins`)
//!   and its claims, whose blocks become block candidates (`block_gc`).
//! - Block candidates are deleted from disk while an exclusive lock keeps uploads from
//!   claiming (a PostgreSQL advisory lock that claims take shared; SQLite's single writer),
//!   and only if nothing claims them by then, and only while no backup holds a maintenance
//!   lease (`maintenance_leases`, migration 0009): a backup takes its lease, then its
//!   snapshot, so every block its snapshot names stays until it has copied them. The lease is
//!   checked after the unused blocks are chosen, so a collection that did not see the lease
//!   chose blocks no later snapshot can name.
//!
//! Every transaction that touches a content's candidate row and its claims takes them in
//! that order (candidate, content, claims), so uploads and collections never deadlock.
//!
//! Most SQL is shared; each backend supplies how to begin a write, take the collector's lock,
//! and insert a list of claims (`gc_store!`'s arguments).

use async_trait::async_trait;

use super::StoreError;

/// What is stored, and the sizes of the collector's queues, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct GcCounts {
    /// File contents stored.
    pub contents: i64,
    /// Bytes of their DAGs (every block, as Kubo counts them).
    pub dag_bytes: i64,
    /// Unreferenced contents waiting for their grace period.
    pub candidates: i64,
    /// Blocks that may be unused, waiting to be deleted.
    pub blocks: i64,
    /// Pins waiting to be removed from the backend.
    pub unpins: i64,
}

/// Deletes blocks from the blockstore by their hex digests.
pub type DeleteBlocks<'a> = &'a (
        dyn Fn(Vec<String>) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync
    );

/// Garbage collection's state (see the module docs).
#[async_trait]
pub trait GcStore: Send + Sync + 'static {
    /// Claims blocks `digests` (hex) for content `cid` before they move into the blockstore,
    /// and withdraws `cid` from the candidates (it is in use again). Waits while a collection
    /// is deleting blocks.
    async fn claim_blocks(
        &self,
        cid: &str,
        digests: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Gives up the claims of `cid` (an upload's staging claims, once the upload has claimed
    /// its blocks as its content, or failed): their blocks become block candidates.
    async fn release_claims(&self, cid: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Contents whose blocks were never listed (stored before migration 0008), up to `limit`.
    async fn unlisted_contents(&self, limit: i64) -> Result<Vec<String>, StoreError>;

    /// Makes a candidate of every content nothing references (left so by a crash, or stored
    /// before candidates were kept); how many it added.
    async fn reconcile_candidates(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Removes up to `limit` candidates that became candidates at or before `cutoff_ms` and
    /// are still unreferenced: rows, attachments, pin (queued for unpinning).
    /// Their blocks, and those of claims older than `orphan_cutoff_ms` whose content was never
    /// stored, become block candidates. Returns the removed contents.
    async fn collect_contents(
        &self,
        cutoff_ms: i64,
        orphan_cutoff_ms: i64,
        limit: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Deletes up to `limit` block candidates nothing claims, calling `delete` with them while
    /// no upload can claim; returns how many were deleted. Deletes none while a maintenance
    /// lease is held (at `now_ms`): `Ok(None)`.
    async fn delete_unused_blocks(
        &self,
        limit: i64,
        now_ms: i64,
        delete: DeleteBlocks<'_>,
    ) -> Result<Option<u64>, StoreError>;

    /// Takes maintenance lease `id` until `until_ms` (garbage collection deletes no block
    /// meanwhile); expired leases are removed first.
    async fn take_lease(
        &self,
        id: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<(), StoreError>;

    /// Extends lease `id` to `until_ms`; `false` if it expired (before `now_ms`) or is gone.
    async fn renew_lease(&self, id: &str, now_ms: i64, until_ms: i64) -> Result<bool, StoreError>;

    /// Gives lease `id` up.
    async fn release_lease(&self, id: &str) -> Result<(), StoreError>;

    /// Takes up to `limit` unpins due at `now_ms` (each put off by `lease_ms` meanwhile):
    /// their CIDs and attempts so far.
    async fn claim_unpins(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError>;

    /// An unpin is done (`retry: None`), or is to be tried again at `(time, error)`. When
    /// done, a content stored again meanwhile is queued for pinning again.
    async fn finish_unpin(
        &self,
        cid: &str,
        retry: Option<(i64, &str)>,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Removes upload sessions untouched since `cutoff_ms`; their ids (to delete their bytes).
    async fn expire_uploads(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError>;

    /// What is stored, and the collector's queue sizes.
    async fn gc_counts(&self) -> Result<GcCounts, StoreError>;
}

pub(super) const UNLISTED: &str = "SELECT cid FROM file_contents c
     WHERE NOT EXISTS (SELECT 1 FROM content_blocks b WHERE b.content_cid = c.cid)
     ORDER BY cid LIMIT $1";
pub(super) const WITHDRAW: &str = "DELETE FROM gc_candidates WHERE cid = $1";
pub(super) const RECONCILE: &str = "INSERT INTO gc_candidates (cid, since_ms)
     SELECT c.cid, $1 FROM file_contents c
     WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.cid = c.cid)
     ON CONFLICT (cid) DO NOTHING";
pub(super) const CANDIDATES: &str =
    "SELECT cid FROM gc_candidates WHERE since_ms <= $1 ORDER BY since_ms, cid LIMIT $2";
pub(super) const TAKE_CANDIDATE: &str =
    "DELETE FROM gc_candidates WHERE cid = $1 AND since_ms <= $2";
/// How many blocks content `$1` claims (none: it was collected while being stored again).
pub(super) const CLAIMS: &str = "SELECT count(*) FROM content_blocks WHERE content_cid = $1";
/// Whether `$1` is referenced.
pub(super) const IN_USE: &str = "SELECT EXISTS (SELECT 1 FROM files WHERE cid = $1)";
pub(super) const QUEUE_UNPIN: &str = "INSERT INTO unpins (cid, next_attempt_ms)
     SELECT cid, $2 FROM pins WHERE cid = $1 ON CONFLICT (cid) DO NOTHING";
pub(super) const DELETE_PIN: &str = "DELETE FROM pins WHERE cid = $1";
pub(super) const DELETE_REFS: &str = "DELETE FROM file_refs WHERE cid = $1";
pub(super) const DELETE_CONTENT: &str = "DELETE FROM file_contents WHERE cid = $1";
pub(super) const FREE_CLAIMS: &str = "INSERT INTO block_gc (digest, since_ms)
     SELECT digest, $2 FROM content_blocks WHERE content_cid = $1
     ON CONFLICT (digest) DO NOTHING";
pub(super) const DELETE_CLAIMS: &str = "DELETE FROM content_blocks WHERE content_cid = $1";
pub(super) const FREE_ORPHANS: &str = "INSERT INTO block_gc (digest, since_ms)
     SELECT digest, $2 FROM content_blocks b
     WHERE claimed_ms < $1
       AND NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.cid = b.content_cid)
     ON CONFLICT (digest) DO NOTHING";
pub(super) const DELETE_ORPHANS: &str = "DELETE FROM content_blocks
     WHERE claimed_ms < $1
       AND NOT EXISTS (SELECT 1 FROM file_contents c WHERE c.cid = content_blocks.content_cid)";
pub(super) const UNUSED_BLOCKS: &str = "SELECT digest FROM block_gc g
     WHERE NOT EXISTS (SELECT 1 FROM content_blocks b WHERE b.digest = g.digest)
     ORDER BY since_ms, digest LIMIT $1";
pub(super) const LEASED: &str =
    "SELECT EXISTS (SELECT 1 FROM maintenance_leases WHERE until_ms > $1)";
pub(super) const EXPIRE_LEASES: &str = "DELETE FROM maintenance_leases WHERE until_ms <= $1";
pub(super) const TAKE_LEASE: &str =
    "INSERT INTO maintenance_leases (id, kind, holder, until_ms) VALUES ($1, 'backup', $2, $3)";
pub(super) const RENEW_LEASE: &str =
    "UPDATE maintenance_leases SET until_ms = $3 WHERE id = $1 AND until_ms > $2";
pub(super) const RELEASE_LEASE: &str = "DELETE FROM maintenance_leases WHERE id = $1";
pub(super) const FORGET_BLOCK: &str = "DELETE FROM block_gc WHERE digest = $1";
pub(super) const FORGET_CLAIMED: &str = "DELETE FROM block_gc
     WHERE EXISTS (SELECT 1 FROM content_blocks b WHERE b.digest = block_gc.digest)";
pub(super) const CLAIM_UNPINS: &str = "UPDATE unpins
     SET attempts = attempts + 1, next_attempt_ms = $1 + $2
     WHERE cid IN (SELECT cid FROM unpins WHERE next_attempt_ms <= $1
                   ORDER BY next_attempt_ms LIMIT $3)
     RETURNING cid, CAST(attempts AS BIGINT)";
pub(super) const RETRY_UNPIN: &str =
    "UPDATE unpins SET next_attempt_ms = $2, last_error = $3 WHERE cid = $1";
pub(super) const DONE_UNPIN: &str = "DELETE FROM unpins WHERE cid = $1";
pub(super) const REPIN: &str = "UPDATE pins
     SET status = 'queued', next_attempt_ms = $2, updated_ms = $2, lease_until_ms = 0
     WHERE cid = $1 AND status IN ('pinned', 'pinning')";
pub(super) const EXPIRE_UPLOADS: &str = "DELETE FROM uploads WHERE updated_ms < $1 RETURNING id";
pub(super) const COUNTS: &str = "SELECT
     (SELECT count(*) FROM file_contents) AS contents,
     (SELECT CAST(COALESCE(sum(dag_size), 0) AS BIGINT) FROM file_contents) AS dag_bytes,
     (SELECT count(*) FROM gc_candidates) AS candidates,
     (SELECT count(*) FROM block_gc) AS blocks,
     (SELECT count(*) FROM unpins) AS unpins";

/// Implements [`GcStore`] for a store with a `pool` and these methods: `begin_write()` (a
/// write transaction), `begin_gc(exclusive)` (one holding the collector's lock, exclusive or
/// shared); `$claim`, the SQL inserting claims `($1 cid, $2 JSON array of digests, $3
/// time)`, and `$lock_content`, the SQL locking content `$1`'s row against new references.
macro_rules! gc_store {
    ($store:ty, $claim:expr, $lock_content:expr) => {
        impl $store {
            /// The one text column of the rows `sql` (with one number, `$1`) returns.
            async fn texts(
                &self,
                sql: &'static str,
                arg: i64,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                let rows: Vec<(String,)> =
                    sqlx::query_as(sql).bind(arg).fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(|(text,)| text).collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::gc::GcStore for $store {
            async fn claim_blocks(
                &self,
                cid: &str,
                digests: &[String],
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                let list = serde_json::to_string(digests)
                    .map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
                // Locks in the order a collection takes them: the candidate, then the claims.
                let mut tx = self.begin_gc(false).await?;
                sqlx::query($crate::store::gc::WITHDRAW)
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query($claim)
                    .bind(cid)
                    .bind(list)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn release_claims(
                &self,
                cid: &str,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::gc as sql;
                let mut tx = self.begin_gc(false).await?;
                sqlx::query(sql::FREE_CLAIMS)
                    .bind(cid)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::DELETE_CLAIMS)
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn unlisted_contents(
                &self,
                limit: i64,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                self.texts($crate::store::gc::UNLISTED, limit).await
            }

            async fn reconcile_candidates(
                &self,
                now_ms: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok(sqlx::query($crate::store::gc::RECONCILE)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn collect_contents(
                &self,
                cutoff_ms: i64,
                orphan_cutoff_ms: i64,
                limit: i64,
                now_ms: i64,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                use $crate::store::gc as sql;
                let candidates: Vec<(String,)> = sqlx::query_as(sql::CANDIDATES)
                    .bind(cutoff_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let mut removed = Vec::new();
                for (cid,) in candidates {
                    let mut tx = self.begin_write().await?;
                    let taken = sqlx::query(sql::TAKE_CANDIDATE)
                        .bind(&cid)
                        .bind(cutoff_ms)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    // Locked before the check, so no reference can be added until commit.
                    sqlx::query($lock_content)
                        .bind(&cid)
                        .execute(&mut *tx)
                        .await?;
                    let (in_use,): (bool,) = sqlx::query_as(sql::IN_USE)
                        .bind(&cid)
                        .fetch_one(&mut *tx)
                        .await?;
                    if taken == 1 && !in_use {
                        sqlx::query(sql::QUEUE_UNPIN)
                            .bind(&cid)
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await?;
                        for statement in [sql::DELETE_PIN, sql::DELETE_REFS, sql::DELETE_CONTENT] {
                            sqlx::query(statement).bind(&cid).execute(&mut *tx).await?;
                        }
                        sqlx::query(sql::FREE_CLAIMS)
                            .bind(&cid)
                            .bind(now_ms)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(sql::DELETE_CLAIMS)
                            .bind(&cid)
                            .execute(&mut *tx)
                            .await?;
                        removed.push(cid);
                    }
                    tx.commit().await?;
                }
                let mut tx = self.begin_write().await?;
                sqlx::query(sql::FREE_ORPHANS)
                    .bind(orphan_cutoff_ms)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::DELETE_ORPHANS)
                    .bind(orphan_cutoff_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(removed)
            }

            async fn delete_unused_blocks(
                &self,
                limit: i64,
                now_ms: i64,
                delete: $crate::store::gc::DeleteBlocks<'_>,
            ) -> Result<Option<u64>, $crate::store::StoreError> {
                use $crate::store::gc as sql;
                let mut tx = self.begin_gc(true).await?;
                let unused: Vec<(String,)> = sqlx::query_as(sql::UNUSED_BLOCKS)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                // After choosing (see the module docs): a backup's snapshot may name them.
                let (leased,): (bool,) = sqlx::query_as(sql::LEASED)
                    .bind(now_ms)
                    .fetch_one(&mut *tx)
                    .await?;
                if leased {
                    return Ok(None);
                }
                // One batch (an unlink each, or one S3 request); the lock keeps uploads from
                // claiming meanwhile.
                delete(unused.iter().map(|(d,)| d.clone()).collect())
                    .await
                    .map_err(|e| {
                        $crate::store::StoreError::Unavailable(sqlx::Error::Io(
                            std::io::Error::other(e),
                        ))
                    })?;
                for (digest,) in &unused {
                    sqlx::query(sql::FORGET_BLOCK)
                        .bind(digest)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(sql::FORGET_CLAIMED).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(unused.len() as u64))
            }

            async fn take_lease(
                &self,
                id: &str,
                holder: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::gc as sql;
                let mut tx = self.begin_write().await?;
                sqlx::query(sql::EXPIRE_LEASES)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::TAKE_LEASE)
                    .bind(id)
                    .bind(holder)
                    .bind(until_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn renew_lease(
                &self,
                id: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let renewed = sqlx::query($crate::store::gc::RENEW_LEASE)
                    .bind(id)
                    .bind(now_ms)
                    .bind(until_ms)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(renewed == 1)
            }

            async fn release_lease(&self, id: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::gc::RELEASE_LEASE)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn claim_unpins(
                &self,
                now_ms: i64,
                lease_ms: i64,
                limit: i64,
            ) -> Result<Vec<(String, i64)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::gc::CLAIM_UNPINS)
                    .bind(now_ms)
                    .bind(lease_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn finish_unpin(
                &self,
                cid: &str,
                retry: Option<(i64, &str)>,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::gc as sql;
                if let Some((next, error)) = retry {
                    sqlx::query(sql::RETRY_UNPIN)
                        .bind(cid)
                        .bind(next)
                        .bind(error)
                        .execute(&self.pool)
                        .await?;
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                sqlx::query(sql::DONE_UNPIN)
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::REPIN)
                    .bind(cid)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn expire_uploads(
                &self,
                cutoff_ms: i64,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                self.texts($crate::store::gc::EXPIRE_UPLOADS, cutoff_ms)
                    .await
            }

            async fn gc_counts(
                &self,
            ) -> Result<$crate::store::gc::GcCounts, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::gc::COUNTS)
                    .fetch_one(&self.pool)
                    .await?)
            }
        }
    };
}
pub(super) use gc_store;
