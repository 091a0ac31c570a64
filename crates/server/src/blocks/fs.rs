//! The fs backend: blocks in a directory, `<dir>/<first two hex digits>/<64 hex digits>`,
//! and each resumable upload's bytes in one file, `<uploads>/<id>`.
//!
//! A block is written to `<dir>/tmp/` first, fsynced, renamed into place and its directory
//! fsynced, so a block is either absent or complete and durable before anyone is told it is
//! stored. An upload's blocks are staged in a directory of their own under `tmp/` and renamed
//! into place on commit. One directory serves one server (or replicas sharing it over a
//! network filesystem); several machines share the s3 backend instead.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use cairn_core::content::{Block, Cid};
use futures::stream::BoxStream;

use super::{
    BlockError, BlockStore, Claims, Staging, is_digest, is_upload_id, on_blocking_pool, verified,
};

/// Blocks on the local filesystem (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct FsBlockStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    tmp: PathBuf,
    uploads: PathBuf,
    counter: AtomicU64,
}

impl FsBlockStore {
    /// Opens (creating) the blockstore in `dir`, with upload bytes in `uploads`, and removes
    /// temporary files a crash left.
    pub fn open(dir: impl Into<PathBuf>, uploads: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        Self::attach(dir, uploads)
    }

    /// Opens the blockstore in `dir` beside a server that may be using it (`cairn verify
    /// --repair`, `cairn gc`): its staging area is left alone. `uploads` is made when an
    /// upload first writes.
    pub fn attach(dir: impl Into<PathBuf>, uploads: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let uploads = uploads.into();
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                tmp,
                uploads,
                counter: AtomicU64::new(0),
            }),
        })
    }

    /// The directory of the blocks.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn path(&self, cid: &Cid) -> PathBuf {
        self.digest_path(&hex::encode(cid.digest()))
    }

    fn digest_path(&self, hex: &str) -> PathBuf {
        self.inner.dir.join(&hex[..2]).join(hex)
    }

    fn temp_name(&self, what: &str) -> PathBuf {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        self.inner
            .tmp
            .join(format!("{what}{}-{n}", std::process::id()))
    }

    /// [`BlockStore::put`], on the calling thread.
    pub fn put_sync(&self, cid: &Cid, data: &[u8]) -> Result<bool, BlockError> {
        verified(cid, data)?;
        let path = self.path(cid);
        if path.exists() {
            return Ok(false);
        }
        let shard = path.parent().unwrap_or(&self.inner.dir);
        std::fs::create_dir_all(shard)?;
        let tmp = self.temp_name("");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        sync_dir(shard)?;
        Ok(true)
    }

    /// [`BlockStore::get`], on the calling thread.
    pub fn get_sync(&self, cid: &Cid) -> Result<Option<Vec<u8>>, BlockError> {
        match std::fs::read(self.path(cid)) {
            Ok(data) if cid.verifies(&data) => Ok(Some(data)),
            Ok(_) => Err(BlockError::Corrupt(*cid)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// [`BlockStore::has`], on the calling thread.
    pub fn has_sync(&self, cid: &Cid) -> bool {
        self.path(cid).exists()
    }

    /// Deletes the block whose digest is `hex`, on the calling thread.
    pub fn delete_digest_sync(&self, hex: &str) -> std::io::Result<()> {
        if !is_digest(hex) {
            return Err(std::io::Error::other(format!(
                "not a block digest: {hex:?}"
            )));
        }
        match std::fs::remove_file(self.digest_path(hex)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every stored block's digest, on the calling thread.
    pub fn list_sync(&self) -> std::io::Result<Vec<String>> {
        Ok(list_blocks(&self.inner.dir)?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect())
    }

    fn part_path(&self, id: &str) -> Result<PathBuf, BlockError> {
        if !is_upload_id(id) {
            return Err(BlockError::Parts(id.into(), "not an upload id".into()));
        }
        Ok(self.inner.uploads.join(id))
    }

    /// Runs `work` on the blocking pool with a clone of the store.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, BlockError> + Send + 'static,
    ) -> Result<T, BlockError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| BlockError::Io(std::io::Error::other(e)))?
    }
}

#[async_trait]
impl BlockStore for FsBlockStore {
    fn describe(&self) -> String {
        format!("fs:{}", self.inner.dir.display())
    }

    async fn put(&self, cid: &Cid, data: Bytes) -> Result<bool, BlockError> {
        let cid = *cid;
        self.blocking(move |s| s.put_sync(&cid, &data)).await
    }

    async fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockError> {
        let cid = *cid;
        let data = self.blocking(move |s| s.get_sync(&cid)).await?;
        Ok(data.map(Bytes::from))
    }

    async fn has(&self, cid: &Cid) -> Result<bool, BlockError> {
        let cid = *cid;
        self.blocking(move |s| Ok(s.has_sync(&cid))).await
    }

    async fn delete_digests(&self, digests: &[String]) -> Result<(), BlockError> {
        let digests = digests.to_vec();
        self.blocking(move |s| {
            for digest in &digests {
                s.delete_digest_sync(digest)?;
            }
            Ok(())
        })
        .await
    }

    fn list_digests(&self) -> BoxStream<'_, Result<String, BlockError>> {
        let listed = self.blocking(|s| Ok(s.list_sync()?));
        Box::pin(futures::TryStreamExt::try_flatten(futures::stream::once(
            async move {
                listed
                    .await
                    .map(|all| futures::stream::iter(all.into_iter().map(Ok)))
            },
        )))
    }

    async fn stage(&self, _claims: &Claims) -> Result<Box<dyn Staging>, BlockError> {
        let dir = self.temp_name("upload-");
        let state = self
            .blocking(move |s| {
                std::fs::create_dir_all(&dir)?;
                Ok(Staged {
                    store: s.clone(),
                    dir,
                    blocks: Vec::new(),
                    seen: std::collections::HashSet::new(),
                    present: Vec::new(),
                })
            })
            .await?;
        Ok(Box::new(FsStaging { state: Some(state) }))
    }

    async fn write_part(&self, id: &str, offset: u64, data: Bytes) -> Result<(), BlockError> {
        let path = self.part_path(id)?;
        let id = id.to_owned();
        self.blocking(move |s| {
            std::fs::create_dir_all(&s.inner.uploads)?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            let len = file.metadata()?.len();
            if len < offset {
                return Err(BlockError::Parts(
                    id,
                    format!("{len} bytes are stored, the upload is at {offset}"),
                ));
            }
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(&data)?;
            file.sync_all()?;
            Ok(())
        })
        .await
    }

    fn read_parts(&self, id: &str, len: u64) -> BoxStream<'static, Result<Bytes, BlockError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let path = self.part_path(id);
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let read = || -> Result<(), BlockError> {
                if len == 0 {
                    return Ok(());
                }
                let mut file = std::fs::File::open(path?)?.take(len);
                let mut left = len;
                while left > 0 {
                    let mut buf = vec![0u8; (1 << 20).min(left) as usize];
                    file.read_exact(&mut buf).map_err(|e| {
                        BlockError::Parts(id.clone(), format!("{left} bytes short: {e}"))
                    })?;
                    left -= buf.len() as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            };
            if let Err(e) = read() {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }

    async fn delete_parts(&self, id: &str) -> Result<(), BlockError> {
        let path = self.part_path(id)?;
        self.blocking(move |_| match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        })
        .await
    }

    async fn probe(&self) -> Result<(), BlockError> {
        self.blocking(|s| {
            let path = s.temp_name("ready-");
            let mut file = std::fs::File::create(&path)?;
            file.write_all(b"ready")?;
            drop(file);
            Ok(std::fs::remove_file(&path)?)
        })
        .await
    }
}

/// An fs upload's staging directory (see [`FsBlockStore::stage`]).
#[derive(Debug)]
struct FsStaging {
    /// Moved to the blocking pool while it writes.
    state: Option<Staged>,
}

#[derive(Debug)]
struct Staged {
    store: FsBlockStore,
    dir: PathBuf,
    blocks: Vec<Cid>,
    seen: std::collections::HashSet<Cid>,
    /// Blocks not staged because the store had them; checked again at commit.
    present: Vec<Cid>,
}

impl Staged {
    fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), BlockError> {
        verified(cid, data)?;
        if !self.seen.insert(*cid) {
            return Ok(());
        }
        if self.store.has_sync(cid) {
            self.present.push(*cid);
            return Ok(());
        }
        let mut file = std::fs::File::create(self.dir.join(hex::encode(cid.digest())))?;
        file.write_all(data)?;
        file.sync_all()?;
        self.blocks.push(*cid);
        Ok(())
    }

    /// Blocks that were already there must still be (the upload claimed them first, so a
    /// collection that started later keeps them; one that ran in between may have removed
    /// them).
    fn commit(&self) -> Result<usize, BlockError> {
        if let Some(gone) = self.present.iter().find(|c| !self.store.has_sync(c)) {
            return Err(BlockError::Collected(*gone));
        }
        let mut shards = std::collections::BTreeSet::new();
        for cid in &self.blocks {
            let path = self.store.path(cid);
            let shard = path.parent().unwrap_or(self.store.dir()).to_path_buf();
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

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl FsStaging {
    async fn with_state<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Staged) -> Result<T, BlockError> + Send + 'static,
    ) -> Result<T, BlockError> {
        on_blocking_pool(&mut self.state, work).await?
    }
}

#[async_trait]
impl Staging for FsStaging {
    async fn put_all(&mut self, blocks: Vec<Block>) -> Result<(), BlockError> {
        self.with_state(move |state| {
            for block in &blocks {
                state.put(&block.cid, &block.data)?;
            }
            Ok(())
        })
        .await
    }

    fn digests(&self) -> Vec<String> {
        let mut digests: Vec<String> = self
            .state
            .iter()
            .flat_map(|s| s.seen.iter().map(|c| hex::encode(c.digest())))
            .collect();
        digests.sort_unstable();
        digests.dedup();
        digests
    }

    async fn commit(mut self: Box<Self>) -> Result<usize, BlockError> {
        self.with_state(|state| state.commit()).await
    }
}

/// Every block file under `store` (`<2 hex>/<64 hex>`): digest and size. Other files (the
/// blockstore's `tmp/`) are left out.
pub fn list_blocks(store: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut blocks = Vec::new();
    let shards = match std::fs::read_dir(store) {
        Ok(shards) => shards,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(blocks),
        Err(e) => return Err(e),
    };
    for shard in shards {
        let shard = shard?;
        let name = shard.file_name();
        let name = name.to_string_lossy();
        if name.len() != 2 || !shard.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(shard.path())? {
            let entry = entry?;
            let digest = entry.file_name().to_string_lossy().into_owned();
            if is_digest(&digest) && digest.starts_with(name.as_ref()) {
                blocks.push((digest, entry.metadata()?.len()));
            }
        }
    }
    blocks.sort();
    Ok(blocks)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use cairn_core::content::{CidVersion, Codec};

    fn store() -> (FsBlockStore, PathBuf) {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cairn-blocks-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FsBlockStore::open(dir.join("blocks"), dir.join("uploads")).unwrap();
        (store, dir)
    }

    #[test]
    fn damage_on_disk_is_detected() {
        let (store, dir) = store();
        let cid = Cid::of_block(CidVersion::V1, Codec::Raw, b"hello");
        store.put_sync(&cid, b"hello").unwrap();
        std::fs::write(store.path(&cid), b"jello").unwrap();
        assert!(matches!(store.get_sync(&cid), Err(BlockError::Corrupt(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
