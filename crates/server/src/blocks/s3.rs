//! The s3 backend: blocks and upload bytes in an S3 bucket (AWS S3 or any S3-compatible
//! store) through the `object_store` crate, shared by every replica.
//!
//! Keys under the prefix: `blocks/<64 hex digits>` (one object per block), `uploads/<id>/<20
//! digit offset>` (the bytes of a resumable upload, one object per write, chained by offset),
//! `probe/<random>` (readiness). S3 has no rename, so an upload's blocks are not moved in at
//! the end: each batch is claimed in the database under the upload's staging id first and
//! written in place (see `blocks`' module docs). Blocks are verified against their CID on the
//! way in and on the way out. Requests are bounded in time; an unreachable store is
//! [`BlockError::Unavailable`] (503 to clients), never a hang.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_core::content::{Block, Cid};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use super::{BlockError, BlockStore, Claims, Staging, is_digest, is_upload_id, verified};

/// Requests in flight at once for one upload's blocks or one deletion batch.
const CONCURRENCY: usize = 8;

/// How to reach the bucket (flags and `AWS_*` variables; see `config::StorageArgs`).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`); unset: AWS (or `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Unset: `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints.
    pub allow_http: bool,
    /// Longest a request (with its retries) may take before the store counts as unavailable.
    pub timeout: Duration,
    /// Access key id and secret; unset: the `AWS_*` environment (or an instance role).
    pub credentials: Option<(String, String)>,
}

/// Blocks in an S3 bucket (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3BlockStore {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
}

impl S3BlockStore {
    /// Connects (lazily: the first request reaches the store) with `config`; what it leaves
    /// unset comes from the `AWS_*` environment.
    pub fn open(config: &S3Config) -> Result<Self, BlockError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: config.timeout,
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(config.timeout)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(config.allow_http),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some((id, secret)) = &config.credentials {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        let store = builder
            .build()
            .map_err(|e| BlockError::Unavailable(format!("S3 configuration: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
        })
    }

    fn key(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn block_key(&self, hex: &str) -> Path {
        self.key(&format!("blocks/{hex}"))
    }

    fn parts_prefix(&self, id: &str) -> Result<Path, BlockError> {
        if !is_upload_id(id) {
            return Err(BlockError::Parts(id.into(), "not an upload id".into()));
        }
        Ok(self.key(&format!("uploads/{id}")))
    }

    async fn put_block(&self, cid: &Cid, data: Bytes) -> Result<(), BlockError> {
        let key = self.block_key(&hex::encode(cid.digest()));
        self.store
            .put(&key, PutPayload::from(data))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deletes `keys` (batched: S3's multi-object delete); missing ones are fine.
    async fn delete_keys(&self, keys: Vec<Path>) -> Result<(), BlockError> {
        let keys = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(keys);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }

    /// Upload `id`'s parts: `(offset, key, size)`, by offset.
    async fn parts(&self, id: &str) -> Result<Vec<(u64, Path, u64)>, BlockError> {
        let prefix = self.parts_prefix(id)?;
        let listed: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut parts: Vec<_> = listed
            .into_iter()
            .filter_map(|meta| {
                let offset = meta.location.filename()?.parse::<u64>().ok()?;
                Some((offset, meta.location, meta.size))
            })
            .collect();
        parts.sort_by_key(|p| p.0);
        Ok(parts)
    }
}

/// Every failure but "not found" means the store cannot serve the request now.
fn unavailable(e: object_store::Error) -> BlockError {
    BlockError::Unavailable(e.to_string())
}

#[async_trait]
impl BlockStore for S3BlockStore {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn put(&self, cid: &Cid, data: Bytes) -> Result<bool, BlockError> {
        verified(cid, &data)?;
        self.put_block(cid, data).await?;
        Ok(true)
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockError> {
        let key = self.block_key(&hex::encode(cid.digest()));
        let data = match self.store.get(&key).await {
            Ok(found) => found.bytes().await.map_err(unavailable)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        if cid.verifies(&data) {
            Ok(Some(data))
        } else {
            Err(BlockError::Corrupt(*cid))
        }
    }

    async fn has(&self, cid: &Cid) -> Result<bool, BlockError> {
        let key = self.block_key(&hex::encode(cid.digest()));
        match self.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete_digests(&self, digests: &[String]) -> Result<(), BlockError> {
        if let Some(bad) = digests.iter().find(|d| !is_digest(d)) {
            return Err(BlockError::Io(std::io::Error::other(format!(
                "not a block digest: {bad:?}"
            ))));
        }
        self.delete_keys(digests.iter().map(|d| self.block_key(d)).collect())
            .await
    }

    fn list_digests(&self) -> BoxStream<'_, Result<String, BlockError>> {
        let prefix = self.key("blocks");
        self.store
            .list(Some(&prefix))
            .map_err(unavailable)
            .try_filter_map(|meta| async move {
                Ok(meta
                    .location
                    .filename()
                    .filter(|name| is_digest(name))
                    .map(str::to_owned))
            })
            .boxed()
    }

    async fn stage(&self, claims: &Claims) -> Result<Box<dyn Staging>, BlockError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| BlockError::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
        Ok(Box::new(S3Staging {
            store: self.clone(),
            claims: claims.clone(),
            id: format!("staging:{}", hex::encode(id)),
            seen: HashSet::new(),
            claimed: false,
        }))
    }

    async fn write_part(&self, id: &str, offset: u64, data: Bytes) -> Result<(), BlockError> {
        let key = self
            .parts_prefix(id)?
            .join(format!("{offset:020}").as_str());
        self.store
            .put(&key, PutPayload::from(data))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn read_parts(&self, id: &str, len: u64) -> BoxStream<'static, Result<Bytes, BlockError>> {
        let this = self.clone();
        let id = id.to_owned();
        let chain = async move {
            // The parts that follow each other from 0 (a write that was not recorded may have
            // left one that does not).
            let mut chain = Vec::new();
            let mut at = 0;
            for (offset, key, size) in this.parts(&id).await? {
                if at >= len {
                    break;
                }
                if offset == at && size > 0 {
                    chain.push((key, size.min(len - at)));
                    at += size;
                }
            }
            if at < len {
                return Err(BlockError::Parts(
                    id,
                    format!("{at} of {len} bytes are stored"),
                ));
            }
            let store = this.store.clone();
            Ok(futures::stream::iter(chain).then(move |(key, take)| {
                let store = store.clone();
                async move {
                    let data = store
                        .get(&key)
                        .await
                        .map_err(unavailable)?
                        .bytes()
                        .await
                        .map_err(unavailable)?;
                    Ok(data.slice(..(take as usize).min(data.len())))
                }
            }))
        };
        futures::stream::once(chain).try_flatten().boxed()
    }

    async fn delete_parts(&self, id: &str) -> Result<(), BlockError> {
        let keys = self.parts(id).await?.into_iter().map(|(_, key, _)| key);
        self.delete_keys(keys.collect()).await
    }

    async fn probe(&self) -> Result<(), BlockError> {
        let mut n = [0u8; 8];
        let _ = getrandom::fill(&mut n);
        let key = self.key(&format!("probe/{}", hex::encode(n)));
        self.store
            .put(&key, PutPayload::from_static(b"ready"))
            .await
            .map_err(unavailable)?;
        self.store.delete(&key).await.map_err(unavailable)
    }
}

/// An s3 upload's blocks: claimed under `id`, then written in place.
#[derive(Debug)]
struct S3Staging {
    store: S3BlockStore,
    claims: Claims,
    /// The claim id (`staging:<random>`), released when the staging ends.
    id: String,
    seen: HashSet<Cid>,
    claimed: bool,
}

#[async_trait]
impl Staging for S3Staging {
    async fn put_all(&mut self, blocks: Vec<Block>) -> Result<(), BlockError> {
        let mut new = Vec::with_capacity(blocks.len());
        for block in blocks {
            verified(&block.cid, &block.data)?;
            if self.seen.insert(block.cid) {
                new.push(block);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let digests: Vec<String> = new.iter().map(|b| hex::encode(b.cid.digest())).collect();
        self.claimed = true;
        self.claims
            .store
            .claim_blocks(&self.id, &digests, crate::clock::now_ms())
            .await
            .map_err(|e| BlockError::Unavailable(format!("cannot claim blocks: {e}")))?;
        let store = &self.store;
        futures::stream::iter(new)
            .map(|block| async move { store.put_block(&block.cid, Bytes::from(block.data)).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    fn digests(&self) -> Vec<String> {
        let mut digests: Vec<String> = self.seen.iter().map(|c| hex::encode(c.digest())).collect();
        digests.sort_unstable();
        digests
    }

    async fn commit(self: Box<Self>) -> Result<usize, BlockError> {
        // Already in place; dropping releases the staging claims (the upload's own claims
        // keep the blocks).
        Ok(self.seen.len())
    }
}

impl Drop for S3Staging {
    fn drop(&mut self) {
        if !self.claimed {
            return;
        }
        let (claims, id) = (self.claims.clone(), std::mem::take(&mut self.id));
        // Left undone (a crash), the collector releases them after `GcSettings::orphan_claims`.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = claims
                    .store
                    .release_claims(&id, crate::clock::now_ms())
                    .await
                {
                    tracing::warn!(%id, error = %e, "cannot release an upload's staging claims");
                }
            });
        }
    }
}
