//! The blockstore: IPFS blocks keyed by their sha2-256 digest (so the CIDv0 and CIDv1 of one
//! dag-pb block are stored once), and the bytes of resumable uploads in progress. Two
//! backends behind one trait, chosen with `--blockstore`: [`fs`] (a directory, the embedded
//! default) and [`s3`] (an S3 bucket, shared by every replica).
//!
//! Whatever the backend, a block is written only after it hashes to its CID, is verified again
//! when read (a damaged block is an error, never wrong bytes), and is deleted only by garbage
//! collection, which decides from the database's claims (`store::gc`). A block is claimed
//! before it is visible in the store: the fs backend stages an upload's blocks in a private
//! directory and moves them in after the upload claimed them; the s3 backend claims each
//! batch for the upload's staging id first and writes it in place (claims of uploads that never
//! finish are released by the collector). It is not an index of files: that is the file
//! metadata in the database.

pub mod fs;
pub mod s3;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_core::content::{Block, Cid};
use futures::stream::BoxStream;

use crate::store::GcStore;

pub use self::fs::FsBlockStore;
pub use self::s3::{S3BlockStore, S3Config};

/// Why a block operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The bytes are not the block the CID names (refused on write).
    #[error("block does not match its CID {0}")]
    Mismatch(Cid),
    /// The stored bytes no longer match their CID (damaged in the store).
    #[error("stored block {0} is corrupt")]
    Corrupt(Cid),
    /// A block that was there when an upload staged was collected before it committed
    /// (the upload may be sent again).
    #[error("block {0} was collected while the upload was in progress")]
    Collected(Cid),
    /// The backend cannot be reached or refused the request for now (an S3 outage): the
    /// request may be tried again.
    #[error("blockstore unavailable: {0}")]
    Unavailable(String),
    /// Upload bytes are missing or inconsistent (parts lost from the store).
    #[error("upload {0}: {1}")]
    Parts(String, String),
    /// The filesystem failed.
    #[error("blockstore I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Who records an upload's claims while its blocks are staged (the database): see the module
/// docs. The fs backend does not need it.
#[derive(Clone)]
pub struct Claims {
    pub store: Arc<dyn GcStore>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claims")
    }
}

/// Where blocks and upload bytes live (see the module docs). Every method may be called from
/// any task; the fs backend does its file I/O on tokio's blocking pool.
#[async_trait]
pub trait BlockStore: Send + Sync + std::fmt::Debug + 'static {
    /// `fs:<dir>` or `s3://bucket/prefix`, for logs and errors.
    fn describe(&self) -> String;

    /// Stores a block after checking it against `cid`; returns whether it was new (the s3
    /// backend does not ask first and says `true`).
    async fn put(&self, cid: &Cid, data: Bytes) -> Result<bool, BlockError>;

    /// The block's bytes, verified; `None` when it is not stored.
    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockError>;

    /// Whether the block is stored (not verified: see [`Self::get`]).
    async fn has(&self, cid: &Cid) -> Result<bool, BlockError>;

    /// Deletes the blocks with these sha2-256 digests (hex), however their CIDs are written;
    /// deleting a missing block is not an error.
    async fn delete_digests(&self, digests: &[String]) -> Result<(), BlockError>;

    /// The digests (hex) of every stored block, in no particular order.
    fn list_digests(&self) -> BoxStream<'_, Result<String, BlockError>>;

    /// A staging area for the blocks of one upload (see the module docs).
    async fn stage(&self, claims: &Claims) -> Result<Box<dyn Staging>, BlockError>;

    /// Stores `data` as the bytes of resumable upload `id` from `offset` on, durably, before
    /// returning; anything stored past `offset` before is dropped.
    async fn write_part(&self, id: &str, offset: u64, data: Bytes) -> Result<(), BlockError>;

    /// Bytes `0..len` of upload `id`, in order.
    fn read_parts(&self, id: &str, len: u64) -> BoxStream<'static, Result<Bytes, BlockError>>;

    /// Removes what upload `id` stored (none is fine).
    async fn delete_parts(&self, id: &str) -> Result<(), BlockError>;

    /// Writes and removes a small object: whether the store takes writes now.
    async fn probe(&self) -> Result<(), BlockError>;
}

/// Blocks of one upload on their way into the store (see [`BlockStore::stage`]): none is
/// visible to readers as part of a file until the upload is recorded, and dropping an
/// uncommitted staging gives its blocks back to garbage collection.
#[async_trait]
pub trait Staging: Send + std::fmt::Debug {
    /// Stages blocks after checking each against its CID (a repeated one once).
    async fn put_all(&mut self, blocks: Vec<Block>) -> Result<(), BlockError>;

    /// The digests (hex) of every block of the upload: what it claims before committing.
    fn digests(&self) -> Vec<String>;

    /// Moves the staged blocks into the store, once the upload has claimed [`Self::digests`];
    /// returns how many were staged.
    async fn commit(self: Box<Self>) -> Result<usize, BlockError>;
}

/// Which backend `--blockstore` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The data directory's `blocks/` and `uploads/`.
    Fs,
    /// A bucket and a key prefix (no leading or trailing `/`; may be empty).
    S3 { bucket: String, prefix: String },
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "fs" {
            return Ok(Self::Fs);
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(format!(
                "blockstore {s:?}: use `fs` or `s3://bucket/prefix`"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("blockstore {s:?}: the bucket name is missing"));
        }
        Ok(Self::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

/// Runs `work` on the value in `slot` on tokio's blocking pool and puts the value back (an
/// importer hashing, a staging directory writing). A slot left empty by a panic in `work`
/// says so on its next use.
pub(crate) async fn on_blocking_pool<T: Send + 'static, R: Send + 'static>(
    slot: &mut Option<T>,
    work: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Result<R, BlockError> {
    let mut value = slot
        .take()
        .ok_or_else(|| BlockError::Io(std::io::Error::other("used after a failure")))?;
    let (value, out) = tokio::task::spawn_blocking(move || {
        let out = work(&mut value);
        (value, out)
    })
    .await
    .map_err(|e| BlockError::Io(std::io::Error::other(e)))?;
    *slot = Some(value);
    Ok(out)
}

/// Checks `data` against `cid` (for puts).
pub(crate) fn verified(cid: &Cid, data: &[u8]) -> Result<(), BlockError> {
    if cid.verifies(data) {
        Ok(())
    } else {
        Err(BlockError::Mismatch(*cid))
    }
}

/// Whether `hex` is a sha2-256 digest in hex (64 digits).
pub(crate) fn is_digest(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `id` can name an upload session (32 hex digits, as the server makes them).
pub(crate) fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse() {
        assert_eq!("fs".parse(), Ok(Backend::Fs));
        assert_eq!(
            "s3://bucket/a/b/".parse(),
            Ok(Backend::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            })
        );
        assert_eq!(
            "s3://bucket".parse(),
            Ok(Backend::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            })
        );
        assert!("s3:///x".parse::<Backend>().is_err());
        assert!("gs://x".parse::<Backend>().is_err());
    }
}
