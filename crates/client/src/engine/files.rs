//! Files kept on this device: imported from a `Blob` as it streams (its IPFS blocks stored
//! in IndexedDB, each checked against its CID on the way in and out), their records, reading
//! them back, and deleting them (queued for the server too). Moving files to and from the
//! server is in `transfer`.

use std::collections::HashSet;

use cairn_core::DocumentId;
use cairn_core::content::{
    Block, Cid, CidVersion, Codec, DagOrder, FileWalk, ImportOptions, Importer, Leaf,
};
use cairn_core::outbox::{FileUpload, OpKind, OpStatus, OutboxEntry};
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, ReadableStreamDefaultReader};

use super::{Engine, new_op_id, now};
use crate::ClientError;
use crate::storage::files::{self, FileEntry};

/// Blocks are written to IndexedDB in transactions of about this many bytes.
const BATCH_BYTES: usize = 4 << 20;

pub(crate) fn parse_cid(cid: &str) -> Result<Cid, ClientError> {
    cid.parse()
        .map_err(|e| ClientError::InvalidArgument(format!("invalid CID {cid:?}: {e}")))
}

/// What `put_file` stores with a file.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub name: String,
    pub content_type: String,
    /// A JSON object, as text.
    pub metadata: String,
    /// Attach the file to this document once uploaded.
    pub document: Option<DocumentId>,
    pub version: CidVersion,
}

/// A new outbox entry of `kind`, due now (IndexedDB assigns its `seq`).
pub(super) fn new_entry(kind: OpKind) -> OutboxEntry {
    OutboxEntry {
        id: new_op_id(),
        seq: 0,
        kind,
        attempts: 0,
        next_attempt_at: now() as u64,
        status: OpStatus::Pending,
        created_at: now() as u64,
        last_error: None,
    }
}

/// Blocks waiting to be written together.
#[derive(Debug, Default)]
pub(super) struct BlockBatch {
    blocks: Vec<(String, Vec<u8>)>,
    pub bytes: usize,
}

impl BlockBatch {
    pub fn add(&mut self, made: &mut Vec<Block>) {
        for block in made.drain(..) {
            self.bytes += block.data.len();
            self.blocks.push((block.cid.to_string(), block.data));
        }
    }

    pub fn push(&mut self, cid: Cid, data: Vec<u8>) {
        self.bytes += data.len();
        self.blocks.push((cid.to_string(), data));
    }

    /// Writes the batch in one transaction; the CIDs that were new.
    pub async fn store(&mut self, engine: &Engine) -> Result<Vec<String>, ClientError> {
        let added = files::put_blocks(engine.db(), &self.blocks).await?;
        self.blocks.clear();
        self.bytes = 0;
        Ok(added)
    }
}

/// Reads the blocks a [`FileWalk`] asks for from IndexedDB, fetching the next siblings
/// ahead in one transaction and checking them against their CIDs together; the window after
/// them is read while they are checked.
#[derive(Debug, Default)]
pub(super) struct BlockReader {
    /// Read and checked.
    ahead: std::collections::HashMap<Cid, Option<Uint8Array>>,
    /// Read, not yet checked: the window that follows `ahead`'s.
    fetched: Vec<(Cid, Option<Uint8Array>)>,
}

/// Blocks fetched (and verified) together.
const READ_AHEAD: usize = 32;

/// Blocks `cids` as stored (`None` for those not here), in one transaction.
async fn fetch(
    engine: &Engine,
    cids: Vec<Cid>,
) -> Result<Vec<(Cid, Option<Uint8Array>)>, ClientError> {
    if cids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = cids.iter().map(ToString::to_string).collect();
    let arrays = files::get_blocks(engine.db(), &keys).await?;
    Ok(cids.into_iter().zip(arrays).collect())
}

impl BlockReader {
    /// The verified block `walk` asks for next (with its CID), `None` at the end of the
    /// walk; the block is `None` when it is not stored.
    pub async fn next(
        &mut self,
        engine: &Engine,
        walk: &mut FileWalk,
    ) -> Result<Option<(Cid, Option<Uint8Array>)>, ClientError> {
        let Some(cid) = walk.next_block() else {
            return Ok(None);
        };
        if !self.ahead.contains_key(&cid) {
            let window = match self.fetched.first() {
                Some((first, _)) if *first == cid => std::mem::take(&mut self.fetched),
                _ => fetch(engine, walk.upcoming(READ_AHEAD)).await?,
            };
            let following = walk
                .upcoming(window.len() + READ_AHEAD)
                .into_iter()
                .skip(window.len())
                .collect();
            let checks = window.iter().map(|(c, a)| async move {
                match a {
                    Some(a) => crate::hash::verifies(c, a).await,
                    None => true,
                }
            });
            let (checked, following) =
                futures::future::join(futures::future::join_all(checks), fetch(engine, following))
                    .await;
            for ((c, array), ok) in window.into_iter().zip(checked) {
                if !ok {
                    return Err(ClientError::Corrupt(format!("stored block {c} is corrupt")));
                }
                self.ahead.insert(c, array);
            }
            self.fetched = following?;
        }
        Ok(Some((cid, self.ahead.remove(&cid).flatten())))
    }
}

/// Leaves hashed together: WebCrypto runs concurrent digests off the page's thread, and the
/// next leaves are read from the Blob's stream meanwhile. Memory: about two batches (8 MiB).
const HASH_BATCH: usize = 16;

/// A `Blob` imported as it streams: its IPFS blocks, leaves hashed with WebCrypto.
#[derive(Debug)]
pub struct BlobImport {
    reader: ReadableStreamDefaultReader,
    importer: Importer,
    /// Leaves read and not yet hashed.
    leaves: Vec<Leaf>,
    read_all: bool,
}

impl BlobImport {
    pub fn new(blob: &Blob, version: CidVersion) -> Self {
        Self {
            reader: blob.stream().get_reader().unchecked_into(),
            importer: Importer::new(ImportOptions {
                version,
                ..ImportOptions::default()
            }),
            leaves: Vec::new(),
            read_all: false,
        }
    }

    /// The blocks the next piece of the blob completed, and the bytes read so far; `None`
    /// once the whole blob is read (then [`finish`](Self::finish)). Hashes the leaves read
    /// by the previous call (together) while it reads the next [`HASH_BATCH`].
    pub async fn next(&mut self) -> Result<Option<(Vec<Block>, f64)>, ClientError> {
        let batch = std::mem::take(&mut self.leaves);
        if batch.is_empty() && self.read_all {
            return Ok(None);
        }
        let Self {
            reader,
            importer,
            leaves,
            read_all,
        } = self;
        let read = async {
            // The stream's chunks (64 KiB in Chromium) until a batch of leaves is complete.
            // (Reading `Blob.slice()`s of 4 MiB instead is three times slower in Chromium:
            // 160 ms for 64 MiB against 47 ms through the stream.)
            while !*read_all && leaves.len() < HASH_BATCH {
                match read_chunk(reader).await? {
                    Some(chunk) => importer.write_leaves(&chunk.to_vec(), leaves),
                    None => *read_all = true,
                }
            }
            Ok::<_, ClientError>(())
        };
        let blocks: Vec<&[u8]> = batch.iter().map(|l| l.block.as_slice()).collect();
        let (read, digests) = futures::future::join(read, crate::hash::digests(&blocks)).await;
        read?;
        let mut made = Vec::new();
        for (leaf, digest) in batch.into_iter().zip(digests) {
            self.importer.add_leaf(leaf, digest, &mut made);
        }
        Ok(Some((made, self.importer.bytes_written() as f64)))
    }

    /// The last blocks (the root last) and the summary.
    pub async fn finish(mut self) -> (Vec<Block>, cairn_core::content::Imported) {
        let mut made = Vec::new();
        self.importer.end_leaves(&mut self.leaves);
        let blocks: Vec<&[u8]> = self.leaves.iter().map(|l| l.block.as_slice()).collect();
        let digests = crate::hash::digests(&blocks).await;
        for (leaf, digest) in self.leaves.drain(..).zip(digests) {
            self.importer.add_leaf(leaf, digest, &mut made);
        }
        let imported = self.importer.finish_tree(&mut made);
        (made, imported)
    }
}

/// The next chunk of a stream being read, or `None` at its end.
async fn read_chunk(
    reader: &ReadableStreamDefaultReader,
) -> Result<Option<Uint8Array>, ClientError> {
    let read = JsFuture::from(reader.read())
        .await
        .map_err(|e| ClientError::InvalidArgument(format!("cannot read the file: {e:?}")))?;
    let done = js_sys::Reflect::get(&read, &wasm_bindgen::intern("done").into())
        .ok()
        .and_then(|d| d.as_bool())
        .unwrap_or(true);
    if done {
        return Ok(None);
    }
    js_sys::Reflect::get(&read, &wasm_bindgen::intern("value").into())
        .ok()
        .and_then(|v| v.dyn_into::<Uint8Array>().ok())
        .map(Some)
        .ok_or_else(|| ClientError::InvalidArgument("an unreadable file".into()))
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
        files::put_blocks(self.db(), blocks).await.map(|_| ())
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

    /// Imports `blob` as it streams: its blocks are stored as they are made, then its record
    /// and its upload, in one transaction, so it is on the device (and queued) once this
    /// resolves, online or not. `progress(bytes read, total)` follows the import. On failure
    /// (a full quota, say) the blocks it added are removed again.
    pub async fn put_file(
        &self,
        blob: &Blob,
        options: PutOptions,
        progress: &dyn Fn(f64, f64),
    ) -> Result<FileEntry, ClientError> {
        let mut added = Vec::new();
        let result = self.import_blob(blob, options, progress, &mut added).await;
        if result.is_err() {
            let _ = files::delete_blocks(self.db(), &added).await;
        }
        result
    }

    async fn import_blob(
        &self,
        blob: &Blob,
        options: PutOptions,
        progress: &dyn Fn(f64, f64),
        added: &mut Vec<String>,
    ) -> Result<FileEntry, ClientError> {
        let total = blob.size();
        let (mut import, mut batch) = (
            BlobImport::new(blob, options.version),
            BlockBatch::default(),
        );
        // A full batch is written while the next is read and hashed.
        let mut writing: Option<BlockBatch> = None;
        loop {
            let (written, next) = match writing.take() {
                Some(mut full) => {
                    let (written, next) =
                        futures::future::join(async { full.store(self).await }, import.next())
                            .await;
                    (Some(written), next)
                }
                None => (None, import.next().await),
            };
            if let Some(written) = written {
                added.extend(written?);
            }
            let Some((mut made, read)) = next? else {
                break;
            };
            batch.add(&mut made);
            if batch.bytes >= BATCH_BYTES {
                writing = Some(std::mem::take(&mut batch));
            }
            progress(read, total);
        }
        if let Some(mut full) = writing {
            added.extend(full.store(self).await?);
        }
        let (mut made, imported) = import.finish().await;
        batch.add(&mut made);
        added.extend(batch.store(self).await?);
        progress(total, total);
        self.record_put(imported.root, imported.size, options).await
    }

    /// Stores blocks a caller imported itself, their bytes in JavaScript arrays (the SDK's
    /// CIDv1 `putFile` hashes leaves with WebCrypto in JS and keeps their bytes there), in one
    /// transaction, without copying them; returns the CIDs that were new. The CIDs are the
    /// importer's, made from these bytes' digests, so they are not hashed again here.
    pub async fn store_imported(
        &self,
        blocks: &[(&str, Uint8Array)],
    ) -> Result<Vec<String>, ClientError> {
        files::put_block_arrays(self.db(), blocks).await
    }

    /// Removes blocks an abandoned import added (see [`put_file`](Self::put_file)).
    pub async fn remove_blocks(&self, cids: &[String]) -> Result<(), ClientError> {
        files::delete_blocks(self.db(), cids).await
    }

    /// The record and the upload operation of a file whose blocks are stored.
    pub async fn record_put(
        &self,
        cid: Cid,
        size: u64,
        options: PutOptions,
    ) -> Result<FileEntry, ClientError> {
        let key = cid.to_string();
        let existing = files::get_file(self.db(), &key).await?;
        let metadata = if options.metadata.is_empty() {
            "{}".to_owned()
        } else {
            options.metadata
        };
        let entry = FileEntry {
            cid: key,
            name: options.name.clone(),
            content_type: options.content_type.clone(),
            size: size as f64,
            metadata: metadata.clone(),
            // Already on the server: the upload finds it there and only attaches it.
            state: match existing.as_ref().map(|e| e.state.as_str()) {
                Some("uploaded") => "uploaded".into(),
                _ => "local".into(),
            },
            created_at: existing.as_ref().map_or(now(), |e| e.created_at),
            upload_id: existing.and_then(|e| e.upload_id),
            code: None,
        };
        let op = new_entry(OpKind::FileUpload(FileUpload {
            cid,
            size,
            name: options.name,
            content_type: options.content_type,
            metadata,
            document: options.document,
            cancelled: false,
        }));
        files::put_file_with_op(self.db(), Some(&entry), &op).await?;
        Ok(entry)
    }

    /// A file's bytes from the blocks stored here, each checked against its CID, as the
    /// pieces of a `Blob`; `None` when a block is missing (the file is not, or not entirely,
    /// on this device).
    pub async fn read_parts(&self, cid: &str) -> Result<Option<Vec<Uint8Array>>, ClientError> {
        let mut walk = FileWalk::new(parse_cid(cid)?, u64::MAX, 0, u64::MAX);
        let (mut reader, mut parts) = (BlockReader::default(), Vec::new());
        while let Some((_, array)) = reader.next(self, &mut walk).await? {
            let Some(array) = array else {
                return Ok(None);
            };
            // A raw leaf: the stored array (or the part of it in the range) is the piece,
            // never copied into wasm.
            if let Some(range) = walk.raw_leaf(u64::from(array.length())) {
                match range.len() {
                    0 => {}
                    n if n == array.length() as usize => parts.push(array),
                    _ => parts.push(array.subarray(range.start as u32, range.end as u32)),
                }
                continue;
            }
            let data = walk
                .block(array.to_vec())
                .map_err(|e| ClientError::Corrupt(e.to_string()))?;
            if !data.is_empty() {
                parts.push(Uint8Array::from(data.as_slice()));
            }
        }
        Ok(Some(parts))
    }

    /// A file's bytes from the blocks stored here (see [`read_parts`](Self::read_parts)).
    pub async fn read_file(&self, cid: &str) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self
            .read_parts(cid)
            .await?
            .map(|parts| parts.iter().flat_map(|p| p.to_vec()).collect()))
    }

    /// Deletes a file here and, through the outbox, on the server: a queued upload of it is
    /// cancelled, its record goes, and so do its blocks that no other file here uses.
    pub async fn delete_file(&self, cid: &str) -> Result<(), ClientError> {
        let cid = parse_cid(cid)?;
        let key = cid.to_string();
        let op = new_entry(OpKind::FileDelete { cid });
        crate::storage::cancel_uploads_and_queue(self.db(), &key, &op).await?;
        let mut garbage = self.dag_blocks(cid).await?;
        for other in files::list_files(self.db()).await? {
            if other.cid != key
                && let Ok(other) = other.cid.parse()
            {
                let kept = self.dag_blocks(other).await?;
                garbage.retain(|c| !kept.contains(c));
            }
        }
        files::delete_file(self.db(), &key).await?;
        files::delete_blocks(self.db(), &garbage.into_iter().collect::<Vec<_>>()).await
    }

    /// The CIDs of a file's blocks stored here, read from its DAG's inner nodes (leaves are
    /// named by their parents and not read).
    async fn dag_blocks(&self, root: Cid) -> Result<HashSet<String>, ClientError> {
        let mut order = DagOrder::new(root);
        let mut found = HashSet::new();
        while let Some(cid) = order.next_block() {
            let key = cid.to_string();
            if cid.codec() == Codec::Raw {
                order
                    .block(&[])
                    .map_err(|e| ClientError::Corrupt(e.to_string()))?;
                found.insert(key);
                continue;
            }
            match files::get_block(self.db(), &key).await? {
                Some(bytes) => {
                    if order.block(&bytes.to_vec()).is_err() {
                        order.skip();
                    }
                    found.insert(key);
                }
                None => order.skip(),
            }
        }
        Ok(found)
    }
}
