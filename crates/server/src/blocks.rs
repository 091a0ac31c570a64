//! The blockstore: IPFS blocks on the server's disk, keyed by their sha2-256 digest (so the
//! CIDv0 and CIDv1 of one dag-pb block are stored once).
//!
//! Layout: `<dir>/<first two hex digits>/<64 hex digits>`. A block is written to
//! `<dir>/tmp/` first, fsynced, renamed into place and its directory fsynced, so a block is
//! either absent or complete and durable before anyone is told it is stored. Every block is
//! verified against its CID when written and again when read: a block damaged on disk is an
//! error, never wrong bytes. It is not an index of files (that is the file metadata in the
//! database) and does not decide what to delete (garbage collection does, from references).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_core::content::Cid;

/// Why a block operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The bytes are not the block the CID names (refused on write).
    #[error("block does not match its CID {0}")]
    Mismatch(Cid),
    /// The stored bytes no longer match their CID (damaged on disk).
    #[error("stored block {0} is corrupt")]
    Corrupt(Cid),
    /// A block that was there when an upload staged was collected before it committed
    /// (the upload may be sent again).
    #[error("block {0} was collected while the upload was in progress")]
    Collected(Cid),
    /// The filesystem failed.
    #[error("blockstore I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Blocks on the local filesystem (see the module docs).
#[derive(Debug)]
pub struct FsBlockStore {
    dir: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl FsBlockStore {
    /// Opens (creating) the blockstore in `dir` and removes temporary files a crash left.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Self {
            dir,
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    /// Opens the blockstore in `dir` beside a server that may be using it (`cairn verify
    /// --repair`, `cairn gc`): its staging area is left alone.
    pub fn attach(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        Ok(Self {
            dir,
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        let hex = hex::encode(cid.digest());
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Stores a block after checking it against `cid`; returns whether it was new.
    pub fn put(&self, cid: &Cid, data: &[u8]) -> Result<bool, BlockError> {
        if !cid.verifies(data) {
            return Err(BlockError::Mismatch(*cid));
        }
        let path = self.path(cid);
        if path.exists() {
            return Ok(false);
        }
        let shard = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(shard)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}-{n}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        sync_dir(shard)?;
        Ok(true)
    }

    /// A staging area for the blocks of one upload: nothing in it is visible until
    /// [`Staging::commit`], and dropping it removes it.
    pub fn stage(self: &Arc<Self>) -> std::io::Result<Staging> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let dir = self.tmp.join(format!("upload-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Staging {
            store: Arc::clone(self),
            dir,
            blocks: Vec::new(),
            seen: std::collections::HashSet::new(),
            present: Vec::new(),
        })
    }

    /// The block's bytes, verified; `None` when it is not stored.
    pub fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, BlockError> {
        match std::fs::read(self.path(cid)) {
            Ok(data) if cid.verifies(&data) => Ok(Some(data)),
            Ok(_) => Err(BlockError::Corrupt(*cid)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the block is stored (not verified: see [`Self::get`]).
    /// Deletes the block whose sha2-256 digest is `hex` (however its CID is written);
    /// deleting a missing block is not an error.
    pub fn delete_digest(&self, hex: &str) -> std::io::Result<()> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(std::io::Error::other(format!(
                "not a block digest: {hex:?}"
            )));
        }
        match std::fs::remove_file(self.dir.join(&hex[..2]).join(hex)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn has(&self, cid: &Cid) -> bool {
        self.path(cid).exists()
    }

    /// Removes a block (garbage collection); absent blocks are fine.
    pub fn delete(&self, cid: &Cid) -> Result<(), BlockError> {
        match std::fs::remove_file(self.path(cid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Blocks written and fsynced, waiting for their upload to be verified (see
/// [`FsBlockStore::stage`]).
#[derive(Debug)]
pub struct Staging {
    store: Arc<FsBlockStore>,
    dir: PathBuf,
    blocks: Vec<Cid>,
    seen: std::collections::HashSet<Cid>,
    /// Blocks not staged because the store had them; checked again at commit.
    present: Vec<Cid>,
}

impl Staging {
    /// Writes a block (a repeated one once) after checking it against `cid`.
    pub fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), BlockError> {
        if !cid.verifies(data) {
            return Err(BlockError::Mismatch(*cid));
        }
        if !self.seen.insert(*cid) {
            return Ok(());
        }
        if self.store.has(cid) {
            self.present.push(*cid);
            return Ok(());
        }
        let mut file = std::fs::File::create(self.dir.join(hex::encode(cid.digest())))?;
        file.write_all(data)?;
        file.sync_all()?;
        self.blocks.push(*cid);
        Ok(())
    }

    /// The digests (hex) of every block of the upload, staged or already present: what it
    /// claims before committing (see `store::gc`).
    pub fn digests(&self) -> Vec<String> {
        let mut digests: Vec<String> = self.seen.iter().map(|c| hex::encode(c.digest())).collect();
        digests.sort_unstable();
        digests.dedup();
        digests
    }

    /// Moves the staged blocks into the store; returns how many were new. Blocks that were
    /// already there must still be (the upload claimed them first, so a collection that
    /// started later keeps them; one that ran in between may have removed them).
    pub fn commit(self) -> Result<usize, BlockError> {
        if let Some(gone) = self.present.iter().find(|c| !self.store.has(c)) {
            return Err(BlockError::Collected(*gone));
        }
        let mut shards = std::collections::BTreeSet::new();
        for cid in &self.blocks {
            let path = self.store.path(cid);
            let shard = path.parent().unwrap_or(&self.store.dir).to_path_buf();
            std::fs::create_dir_all(&shard)?;
            std::fs::rename(self.dir.join(hex::encode(cid.digest())), &path)?;
            shards.insert(shard);
        }
        for shard in &shards {
            sync_dir(shard)?;
        }
        Ok(self.blocks.len())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use cairn_core::content::{CidVersion, Codec};

    fn store() -> (Arc<FsBlockStore>, PathBuf) {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cairn-blocks-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Arc::new(FsBlockStore::open(&dir).unwrap()), dir)
    }

    #[test]
    fn put_get_dedupe_delete() {
        let (store, dir) = store();
        let cid = Cid::of_block(CidVersion::V1, Codec::Raw, b"hello");
        assert!(store.put(&cid, b"hello").unwrap());
        assert!(!store.put(&cid, b"hello").unwrap(), "second put is a no-op");
        assert_eq!(store.get(&cid).unwrap().as_deref(), Some(&b"hello"[..]));
        store.delete(&cid).unwrap();
        assert_eq!(store.get(&cid).unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn wrong_bytes_are_refused_and_damage_is_detected() {
        let (store, dir) = store();
        let cid = Cid::of_block(CidVersion::V1, Codec::Raw, b"hello");
        assert!(matches!(
            store.put(&cid, b"jello"),
            Err(BlockError::Mismatch(_))
        ));
        assert!(!store.has(&cid), "nothing stored");
        store.put(&cid, b"hello").unwrap();
        std::fs::write(store.path(&cid), b"jello").unwrap();
        assert!(matches!(store.get(&cid), Err(BlockError::Corrupt(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn staged_blocks_appear_only_on_commit() {
        let (store, dir) = store();
        let a = Cid::of_block(CidVersion::V1, Codec::Raw, b"a");
        let b = Cid::of_block(CidVersion::V1, Codec::Raw, b"b");
        let mut staging = store.stage().unwrap();
        staging.put(&a, b"a").unwrap();
        staging.put(&a, b"a").unwrap();
        assert!(!store.has(&a));
        drop(staging);
        assert!(!store.has(&a), "an abandoned upload leaves nothing");
        let mut staging = store.stage().unwrap();
        staging.put(&a, b"a").unwrap();
        staging.put(&b, b"b").unwrap();
        assert_eq!(staging.commit().unwrap(), 2);
        assert!(store.has(&a) && store.has(&b));
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
