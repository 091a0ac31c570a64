//! The file service: uploads hashed into IPFS blocks as they stream in and kept only if the
//! declared CID is the computed one; downloads walked block by block from the blockstore,
//! each block verified, with byte ranges. Memory stays bounded by a chunk and the open tree
//! nodes, whatever the file size.
//!
//! The blocking parts ([`Upload`], [`Reader`]) run on tokio's blocking pool; the HTTP layer
//! (`http::files`) drives them. Metadata (who has which file) is in [`FileStore`].

use std::sync::Arc;

use cairn_core::content::unixfs::{self, NodeType};
use cairn_core::content::{Block, Cid, Codec, ImportOptions, Imported, Importer};

use crate::blocks::{BlockError, FsBlockStore, Staging};
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
    pub blocks: Arc<FsBlockStore>,
    pub limits: FileLimits,
    /// Where resumable uploads keep the bytes received so far.
    pub uploads_dir: std::path::PathBuf,
    /// With a pinning backend: wakes its worker when new content is queued.
    pub pin_wake: Option<Arc<tokio::sync::Notify>>,
}

impl std::fmt::Debug for dyn FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileStore")
    }
}

/// One upload in progress: bytes are imported and their blocks staged as they arrive.
#[derive(Debug)]
pub struct Upload {
    importer: Importer,
    staging: Staging,
    blocks: Vec<Block>,
}

impl Upload {
    /// Starts an upload into `blocks`' staging area.
    pub fn new(blocks: &Arc<FsBlockStore>, options: ImportOptions) -> Result<Self, BlockError> {
        Ok(Self {
            importer: Importer::new(options),
            staging: blocks.stage()?,
            blocks: Vec::new(),
        })
    }

    /// File bytes received so far.
    pub fn bytes_written(&self) -> u64 {
        self.importer.bytes_written()
    }

    /// Imports `bytes` and stages the blocks they complete.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BlockError> {
        self.importer.write(bytes, &mut self.blocks);
        self.stage_pending()
    }

    fn stage_pending(&mut self) -> Result<(), BlockError> {
        for block in self.blocks.drain(..) {
            self.staging.put(&block.cid, &block.data)?;
        }
        Ok(())
    }

    /// Ends the file: its root CID, sizes, and the staged blocks (committed by the caller
    /// once the CID is accepted, dropped otherwise).
    pub fn finish(mut self) -> Result<(Imported, Staging), BlockError> {
        let imported = self.importer.finish(&mut self.blocks);
        for block in self.blocks.drain(..) {
            self.staging.put(&block.cid, &block.data)?;
        }
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

/// Reads a file's bytes `start..end` leaf by leaf, skipping subtrees outside the range.
#[derive(Debug)]
pub struct Reader {
    blocks: Arc<FsBlockStore>,
    /// Open nodes: their children (CID, file bytes under it) and the next one to visit.
    stack: Vec<(Vec<(Cid, u64)>, usize)>,
    offset: u64,
    start: u64,
    end: u64,
}

impl Reader {
    /// A reader for bytes `start..end` of the file `root` of `size` bytes.
    pub fn new(blocks: Arc<FsBlockStore>, root: Cid, size: u64, start: u64, end: u64) -> Self {
        Self {
            blocks,
            stack: vec![(vec![(root, size)], 0)],
            offset: 0,
            start,
            end: end.min(size),
        }
    }

    /// The next piece of the range, or `None` at its end.
    pub fn next_piece(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            if self.offset >= self.end {
                return Ok(None);
            }
            let Some((children, next)) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(&(cid, size)) = children.get(*next) else {
                self.stack.pop();
                continue;
            };
            *next += 1;
            if self.offset + size <= self.start {
                self.offset += size;
                continue;
            }
            let block = self.blocks.get(&cid)?.ok_or(ReadError::Missing(cid))?;
            let data = match cid.codec() {
                Codec::Raw => block,
                Codec::DagPb => {
                    let bad = |m: &str| ReadError::Malformed(cid, m.to_owned());
                    let node = unixfs::decode(&block).map_err(|e| bad(&e.to_string()))?;
                    if !matches!(node.node_type, NodeType::File | NodeType::Raw) {
                        return Err(bad("not a file node"));
                    }
                    if node.links.is_empty() {
                        node.data
                    } else if node.data.is_empty() && node.blocksizes.len() == node.links.len() {
                        let children = node.links.iter().map(|l| l.cid).zip(node.blocksizes);
                        self.stack.push((children.collect(), 0));
                        continue;
                    } else {
                        return Err(bad("unsupported file node layout"));
                    }
                }
            };
            let (from, to) = (self.offset, self.offset + data.len() as u64);
            self.offset = to;
            let lo = usize::try_from(self.start.saturating_sub(from)).unwrap_or(usize::MAX);
            let hi = usize::try_from(self.end.min(to) - from).unwrap_or(usize::MAX);
            if lo >= hi {
                continue;
            }
            let mut data = data;
            data.truncate(hi);
            data.drain(..lo);
            return Ok(Some(data));
        }
    }
}

/// Every block of a DAG once, depth-first from the root (the order trustless gateways use
/// for CAR files), each verified. Holds the CIDs still to visit and those already sent.
#[derive(Debug)]
pub struct DagWalk {
    blocks: Arc<FsBlockStore>,
    todo: Vec<Cid>,
    seen: std::collections::HashSet<Cid>,
}

impl DagWalk {
    pub fn new(blocks: Arc<FsBlockStore>, root: Cid) -> Self {
        Self {
            blocks,
            todo: vec![root],
            seen: std::collections::HashSet::new(),
        }
    }

    /// The next block, or `None` when the DAG is done.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>, ReadError> {
        while let Some(cid) = self.todo.pop() {
            if !self.seen.insert(cid) {
                continue;
            }
            let data = self.blocks.get(&cid)?.ok_or(ReadError::Missing(cid))?;
            if cid.codec() == Codec::DagPb {
                let node =
                    unixfs::decode(&data).map_err(|e| ReadError::Malformed(cid, e.to_string()))?;
                self.todo.extend(node.links.iter().rev().map(|l| l.cid));
            }
            return Ok(Some((cid, data)));
        }
        Ok(None)
    }
}

/// The CARv1 header naming `root`: DAG-CBOR `{"roots": [root], "version": 1}`, with its
/// length prefix.
pub fn car_header(root: &Cid) -> Vec<u8> {
    let cid = root.to_bytes();
    let mut cbor = vec![0xa2, 0x65];
    cbor.extend_from_slice(b"roots");
    cbor.extend_from_slice(&[0x81, 0xd8, 0x2a]); // array(1), tag 42 (CID)
    cbor_bytes_header(&mut cbor, cid.len() + 1);
    cbor.push(0x00); // the identity multibase prefix DAG-CBOR puts before a CID
    cbor.extend_from_slice(&cid);
    cbor.push(0x67);
    cbor.extend_from_slice(b"version");
    cbor.push(0x01);
    let mut out = Vec::with_capacity(cbor.len() + 2);
    write_varint(&mut out, cbor.len() as u64);
    out.extend_from_slice(&cbor);
    out
}

/// One CAR section: length, CID, block.
pub fn car_section(cid: &Cid, data: &[u8]) -> Vec<u8> {
    let cid = cid.to_bytes();
    let mut out = Vec::with_capacity(cid.len() + data.len() + 10);
    write_varint(&mut out, (cid.len() + data.len()) as u64);
    out.extend_from_slice(&cid);
    out.extend_from_slice(data);
    out
}

fn cbor_bytes_header(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=255 => out.extend_from_slice(&[0x58, len as u8]),
        _ => {
            out.push(0x59);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
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
