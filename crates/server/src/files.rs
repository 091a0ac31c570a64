//! The file service: uploads hashed into IPFS blocks as they stream in and kept only if the
//! declared CID is the computed one; downloads walked block by block from the blockstore,
//! each block verified, with byte ranges. Memory stays bounded by a chunk and the open tree
//! nodes, whatever the file size.
//!
//! Hashing runs on tokio's blocking pool; block I/O goes through the [`BlockStore`]. The HTTP
//! layer (`http::files`) drives them. Metadata (who has which file) is in [`FileStore`].

use std::collections::HashMap;
use std::sync::Arc;

use cairn_core::content::{Block, Cid, DagOrder, FileWalk, ImportOptions, Imported, Importer};

use bytes::Bytes;

use crate::blocks::{BlockError, BlockStore, Claims, Staging, on_blocking_pool};
use crate::store::FileStore;

/// Upload limits, from configuration.
#[derive(Debug, Clone)]
pub struct FileLimits {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Accepted media types: exact (`application/pdf`), a family (`image/*`), or `*/*`.
    pub allowed_types: Vec<String>,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 30,
            allowed_types: vec!["*/*".to_owned()],
        }
    }
}

impl FileLimits {
    /// Whether files of media type `content_type` (parameters ignored) are accepted.
    pub fn allows(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let family = essence.split('/').next().unwrap_or("");
        self.allowed_types.iter().any(|allowed| {
            let allowed = allowed.trim().to_ascii_lowercase();
            allowed == "*/*"
                || allowed == essence
                || allowed
                    .strip_suffix("/*")
                    .is_some_and(|prefix| prefix == family)
        })
    }
}

/// Files: metadata, blocks and limits.
#[derive(Debug)]
pub struct Files {
    pub store: Arc<dyn FileStore>,
    /// Blocks and the bytes of resumable uploads.
    pub blocks: Arc<dyn BlockStore>,
    pub limits: FileLimits,
    /// With a pinning backend: wakes its worker when new content is queued.
    pub pin_wake: Option<Arc<tokio::sync::Notify>>,
}

impl Files {
    /// Who records uploads' staging claims.
    pub fn claims(&self) -> Claims {
        Claims {
            store: self.store.clone(),
        }
    }
}

impl std::fmt::Debug for dyn FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileStore")
    }
}

impl std::fmt::Debug for dyn crate::store::GcStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcStore")
    }
}

/// One upload in progress: bytes are imported (on the blocking pool) and their blocks staged
/// as they arrive.
#[derive(Debug)]
pub struct Upload {
    /// Moved to the blocking pool while it hashes.
    importer: Option<Importer>,
    staging: Box<dyn Staging>,
}

impl Upload {
    /// Starts an upload into `files`' blockstore.
    pub async fn new(files: &Files, options: ImportOptions) -> Result<Self, BlockError> {
        Ok(Self {
            importer: Some(Importer::new(options)),
            staging: files.blocks.stage(&files.claims()).await?,
        })
    }

    /// File bytes received so far.
    pub fn bytes_written(&self) -> u64 {
        self.importer.as_ref().map_or(0, Importer::bytes_written)
    }

    /// Imports `bytes` and stages the blocks they complete.
    pub async fn write(&mut self, bytes: Vec<u8>) -> Result<(), BlockError> {
        let blocks = self
            .hash(move |importer, blocks| importer.write(&bytes, blocks))
            .await?;
        self.staging.put_all(blocks).await
    }

    /// Runs `work` on the importer on the blocking pool; the blocks it completed.
    async fn hash(
        &mut self,
        work: impl FnOnce(&mut Importer, &mut Vec<Block>) + Send + 'static,
    ) -> Result<Vec<Block>, BlockError> {
        on_blocking_pool(&mut self.importer, move |importer| {
            let mut blocks = Vec::new();
            work(importer, &mut blocks);
            blocks
        })
        .await
    }

    /// Ends the file: its root CID, sizes, and the staged blocks (committed by the caller
    /// once the CID is accepted, dropped otherwise).
    pub async fn finish(mut self) -> Result<(Imported, Box<dyn Staging>), BlockError> {
        let importer = self
            .importer
            .take()
            .ok_or_else(|| BlockError::Io(std::io::Error::other("upload used after a failure")))?;
        let (imported, blocks) = tokio::task::spawn_blocking(move || {
            let mut blocks = Vec::new();
            let imported = importer.finish(&mut blocks);
            (imported, blocks)
        })
        .await
        .map_err(|e| BlockError::Io(std::io::Error::other(e)))?;
        self.staging.put_all(blocks).await?;
        Ok((imported, self.staging))
    }
}

/// Why a stored file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("block {0} is missing from the blockstore")]
    Missing(Cid),
    #[error("block {0}: {1}")]
    Malformed(Cid, String),
}

/// Blocks a [`Reader`] asks for at once, ahead of the one it needs (an S3 store answers
/// each request after a round trip; a few in flight keep the stream going).
const READ_AHEAD: usize = 4;

/// Reads a file's bytes `start..end` leaf by leaf from the blockstore (each block verified
/// there), skipping subtrees outside the range: the core's [`FileWalk`] over the store. The
/// next siblings are fetched together ([`READ_AHEAD`]), so memory holds at most that many
/// blocks.
#[derive(Debug)]
pub struct Reader {
    blocks: Arc<dyn BlockStore>,
    walk: FileWalk,
    /// Blocks fetched ahead, each as the store answered (an error is raised only if the block
    /// is needed).
    ahead: HashMap<Cid, Result<Option<Bytes>, BlockError>>,
}

impl Reader {
    /// A reader for bytes `start..end` of the file `root` of `size` bytes.
    pub fn new(blocks: Arc<dyn BlockStore>, root: Cid, size: u64, start: u64, end: u64) -> Self {
        Self {
            blocks,
            walk: FileWalk::new(root, size, start, end),
            ahead: HashMap::new(),
        }
    }

    /// The next piece of the range, or `None` at its end.
    pub async fn next_piece(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        while let Some(cid) = self.walk.next_block() {
            if !self.ahead.contains_key(&cid) {
                let wanted = self.walk.upcoming(READ_AHEAD);
                let blocks = self.blocks.as_ref();
                let fetched = futures::future::join_all(wanted.iter().map(|c| blocks.get(c))).await;
                self.ahead.extend(wanted.into_iter().zip(fetched));
            }
            let block = self
                .ahead
                .remove(&cid)
                .unwrap_or(Ok(None))?
                .ok_or(ReadError::Missing(cid))?;
            let data = self
                .walk
                .block(Vec::from(block))
                .map_err(|e| ReadError::Malformed(cid, e.reason))?;
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}

/// Every block of a DAG once, depth-first from the root (the order trustless gateways use
/// for CAR files), each verified: the core's [`DagOrder`] over the store.
#[derive(Debug)]
pub struct DagWalk {
    blocks: Arc<dyn BlockStore>,
    order: DagOrder,
}

impl DagWalk {
    pub fn new(blocks: Arc<dyn BlockStore>, root: Cid) -> Self {
        Self {
            blocks,
            order: DagOrder::new(root),
        }
    }

    /// The next block, or `None` when the DAG is done.
    pub async fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>, ReadError> {
        let Some(cid) = self.order.next_block() else {
            return Ok(None);
        };
        let data = self
            .blocks
            .get(&cid)
            .await?
            .ok_or(ReadError::Missing(cid))?;
        self.order
            .block(&data)
            .map_err(|e| ReadError::Malformed(cid, e.reason))?;
        Ok(Some((cid, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_patterns() {
        let limits = FileLimits {
            max_file_bytes: 1,
            allowed_types: vec!["image/*".into(), "application/pdf".into()],
        };
        assert!(limits.allows("image/png"));
        assert!(limits.allows("Image/PNG; charset=x"));
        assert!(limits.allows("application/pdf"));
        assert!(!limits.allows("application/pdfx"));
        assert!(!limits.allows("text/plain"));
        assert!(FileLimits::default().allows("anything/at-all"));
    }
}
