//! Garbage collection: file contents nobody references any more are removed, with their
//! pins and the blocks no other content uses; abandoned upload sessions expire.
//!
//! A content becomes a candidate when its last reference is deleted, and is collected once
//! it has stayed unreferenced for the grace period (an upload of the same bytes meanwhile
//! withdraws it). Blocks are shared between contents (and between the CIDv0 and CIDv1 of a
//! node), so each content's blocks are listed ("claimed") in the database, by uploads before
//! they move into the blockstore, and a block is deleted only when no claim names it; see
//! [`crate::store::GcStore`] for how that is kept safe against uploads on any replica.
//! Unpinning goes through the same backend as pinning, retried with backoff.
//!
//! Runs on every replica; the database decides what each one does, so running twice is
//! harmless. Contents stored before block lists were kept are listed from their DAGs first.

use std::sync::Arc;
use std::time::Duration;

use cairn_core::content::{Cid, Codec, DagOrder};
use cairn_core::retry::RetryPolicy;

use crate::clock::{ms, now_ms, retry_at};
use crate::files::Files;
use crate::pinning::{PinError, Pinner};
use crate::store::StoreError;

/// How the collector behaves.
#[derive(Debug, Clone, Copy)]
pub struct GcSettings {
    /// Time between collections.
    pub every: Duration,
    /// How long a content stays unreferenced before it is collected.
    pub grace: Duration,
    /// Upload sessions untouched this long are removed with their bytes.
    pub upload_expiry: Duration,
    /// Claims of contents never stored (an upload that died between claiming and storing)
    /// are released after this long.
    pub orphan_claims: Duration,
    /// Rows handled per database round.
    pub batch: i64,
    /// Backoff of unpin attempts.
    pub retry: RetryPolicy,
}

impl Default for GcSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(300),
            grace: Duration::from_secs(3600),
            upload_expiry: Duration::from_secs(7 * 24 * 3600),
            orphan_claims: Duration::from_secs(24 * 3600),
            batch: 200,
            retry: RetryPolicy {
                base_ms: 1_000,
                max_ms: 300_000,
                max_attempts: None,
            },
        }
    }
}

/// What one collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub contents: u64,
    pub blocks: u64,
    pub uploads: u64,
    pub unpinned: u64,
    /// Whether block deletion was put off because a backup holds a maintenance lease.
    pub deferred: bool,
}

/// Runs collections every `settings.every` until the process ends.
pub fn spawn(files: Arc<Files>, pinner: Option<Arc<dyn Pinner>>, settings: GcSettings) {
    tokio::spawn(async move {
        if let Err(e) = prepare(&files).await {
            tracing::warn!(error = %e, "garbage collection cannot start; retrying later");
        }
        loop {
            match collect(&files, pinner.as_deref(), &settings).await {
                Ok(done) if done != Collected::default() => {
                    tracing::info!(?done, "garbage collected")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "garbage collection failed; will retry"),
            }
            tokio::time::sleep(settings.every).await;
        }
    });
}

/// Lists the blocks of contents stored before block lists were kept, and makes candidates
/// of contents left unreferenced (by a crash, or before candidates were kept).
pub async fn prepare(files: &Files) -> Result<(), StoreError> {
    loop {
        let unlisted = files.store.unlisted_contents(100).await?;
        if unlisted.is_empty() {
            break;
        }
        for cid in unlisted {
            let digests = match cid.parse::<Cid>() {
                Ok(root) => dag_digests(files.blocks.as_ref(), root).await,
                Err(_) => Vec::new(),
            };
            if digests.is_empty() {
                tracing::warn!(%cid, "a stored content's blocks cannot be read; listing none");
            }
            // An unreadable content still gets its root listed, so it is not asked again.
            let digests = if digests.is_empty() {
                vec![
                    cid.parse::<Cid>()
                        .map_or(String::new(), |c| hex::encode(c.digest())),
                ]
            } else {
                digests
            };
            files.store.claim_blocks(&cid, &digests, 0).await?;
        }
    }
    let added = files.store.reconcile_candidates(now_ms()).await?;
    if added > 0 {
        tracing::info!(added, "unreferenced contents await garbage collection");
    }
    Ok(())
}

/// The digests of the blocks of the DAG under `root` found in the blockstore (raw leaves
/// are named by their parents and not read).
async fn dag_digests(blocks: &dyn crate::blocks::BlockStore, root: Cid) -> Vec<String> {
    let mut order = DagOrder::new(root);
    let mut found = Vec::new();
    while let Some(cid) = order.next_block() {
        if cid.codec() == Codec::Raw {
            let _ = order.block(&[]);
            if blocks.has(&cid).await.unwrap_or(false) {
                found.push(hex::encode(cid.digest()));
            }
            continue;
        }
        match blocks.get(&cid).await {
            Ok(Some(data)) => {
                if order.block(&data).is_err() {
                    order.skip();
                }
                found.push(hex::encode(cid.digest()));
            }
            _ => order.skip(),
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// One collection: expired uploads, unreferenced contents, unused blocks, due unpins.
pub async fn collect(
    files: &Files,
    pinner: Option<&dyn Pinner>,
    settings: &GcSettings,
) -> Result<Collected, StoreError> {
    let now = now_ms();
    let mut done = Collected::default();
    for id in files
        .store
        .expire_uploads(now.saturating_sub(ms(settings.upload_expiry)))
        .await?
    {
        if let Err(e) = files.blocks.delete_parts(&id).await {
            tracing::warn!(%id, error = %e, "cannot remove an expired upload's bytes");
        }
        done.uploads += 1;
    }
    loop {
        let removed = files
            .store
            .collect_contents(
                now.saturating_sub(ms(settings.grace)),
                now.saturating_sub(ms(settings.orphan_claims)),
                settings.batch,
                now,
            )
            .await?;
        for cid in &removed {
            tracing::debug!(%cid, "collected an unreferenced file content");
        }
        done.contents += removed.len() as u64;
        if (removed.len() as i64) < settings.batch {
            break;
        }
    }
    let blocks = files.blocks.clone();
    let delete =
        move |digests: Vec<String>| -> futures::future::BoxFuture<'static, Result<(), String>> {
            let blocks = blocks.clone();
            Box::pin(async move {
                blocks
                    .delete_digests(&digests)
                    .await
                    .map_err(|e| e.to_string())
            })
        };
    loop {
        let Some(deleted) = files
            .store
            .delete_unused_blocks(settings.batch, now_ms(), &delete)
            .await?
        else {
            tracing::info!("a backup is running: unused blocks are deleted after it");
            done.deferred = true;
            break;
        };
        done.blocks += deleted;
        if (deleted as i64) < settings.batch {
            break;
        }
    }
    if let Some(pinner) = pinner {
        done.unpinned = unpin(files, pinner, settings).await?;
        crate::metrics::unpinned(done.unpinned);
    }
    crate::metrics::gc_run(done.contents, done.blocks, done.uploads);
    Ok(done)
}

/// Removes the pins of collected contents from the backend.
async fn unpin(
    files: &Files,
    pinner: &dyn Pinner,
    settings: &GcSettings,
) -> Result<u64, StoreError> {
    let mut unpinned = 0;
    let lease = ms(Duration::from_secs(600));
    for (cid, attempts) in files
        .store
        .claim_unpins(now_ms(), lease, settings.batch)
        .await?
    {
        let result = match cid.parse::<Cid>() {
            Ok(parsed) => pinner.unpin(&parsed).await,
            Err(e) => Err(PinError::Permanent(e.to_string())),
        };
        match result {
            Ok(()) | Err(PinError::Permanent(_)) => {
                if let Err(PinError::Permanent(e)) = &result {
                    tracing::warn!(%cid, error = %e, "cannot unpin; giving up");
                }
                files.store.finish_unpin(&cid, None, now_ms()).await?;
                unpinned += 1;
            }
            Err(PinError::Retryable(error)) => {
                let next = retry_at(&settings.retry, attempts);
                tracing::warn!(%cid, %error, "unpin failed; will retry");
                files
                    .store
                    .finish_unpin(&cid, Some((next, &error)), now_ms())
                    .await?;
            }
        }
    }
    Ok(unpinned)
}
