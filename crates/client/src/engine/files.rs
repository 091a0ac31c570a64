//! Files kept on this device: their IPFS blocks (checked against their CIDs on the way in and
//! out) and their records. Uploading them through the outbox builds on this.

use cairn_core::content::unixfs::{self, NodeType};
use cairn_core::content::{Cid, Codec};

use super::Engine;
use crate::ClientError;
use crate::storage::files::{self, FileEntry};

fn parse_cid(cid: &str) -> Result<Cid, ClientError> {
    cid.parse()
        .map_err(|e| ClientError::InvalidArgument(format!("invalid CID {cid:?}: {e}")))
}

impl Engine {
    /// Stores blocks (`(cid, bytes)`, as the importer produces them) in one transaction;
    /// a block that is not its CID's is refused and nothing is stored.
    pub async fn put_blocks(&self, blocks: &[(String, Vec<u8>)]) -> Result<(), ClientError> {
        for (cid, bytes) in blocks {
            if !parse_cid(cid)?.verifies(bytes) {
                return Err(ClientError::InvalidArgument(format!(
                    "block {cid} does not match its CID"
                )));
            }
        }
        files::put_blocks(self.db(), blocks).await
    }

    /// Records a file whose blocks are stored.
    pub async fn record_file(&self, entry: &FileEntry) -> Result<(), ClientError> {
        parse_cid(&entry.cid)?;
        files::put_file(self.db(), entry).await
    }

    /// A file's record.
    pub async fn file(&self, cid: &str) -> Result<Option<FileEntry>, ClientError> {
        files::get_file(self.db(), &parse_cid(cid)?.to_string()).await
    }

    /// Every file kept on this device.
    pub async fn files(&self) -> Result<Vec<FileEntry>, ClientError> {
        files::list_files(self.db()).await
    }

    /// A file's bytes from the stored blocks, each checked against its CID; `None` when a
    /// block is missing (the file is not, or not entirely, on this device).
    pub async fn read_file(&self, cid: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let mut out = Vec::new();
        let mut todo = vec![parse_cid(cid)?];
        while let Some(cid) = todo.pop() {
            let key = cid.to_string();
            let Some(bytes) = files::get_block(self.db(), &key).await? else {
                return Ok(None);
            };
            if !cid.verifies(&bytes) {
                return Err(ClientError::Storage(format!(
                    "stored block {key} is corrupt"
                )));
            }
            if cid.codec() == Codec::Raw {
                out.extend_from_slice(&bytes);
                continue;
            }
            let node = unixfs::decode(&bytes)
                .map_err(|e| ClientError::Storage(format!("block {key}: {e}")))?;
            if !matches!(node.node_type, NodeType::File | NodeType::Raw) {
                return Err(ClientError::InvalidArgument(format!("{key} is not a file")));
            }
            out.extend_from_slice(&node.data);
            todo.extend(node.links.iter().rev().map(|l| l.cid));
        }
        Ok(Some(out))
    }
}
