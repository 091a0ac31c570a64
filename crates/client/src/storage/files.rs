//! Files in IndexedDB (schema version 3): the IPFS blocks of files kept on this device, and a
//! record per file.
//!
//! - `blocks` `{cid, bytes}` — leaves and DAG nodes by CID string; shared by every file that
//!   contains them (content addressing deduplicates).
//! - `files` `{cid, name, type, size, metadata, state, createdAt, uploadId?, code?}` — `state`
//!   is where the file stands: `local` (only here, its upload queued), `uploading` (an upload
//!   session `uploadId` is open on the server), `uploaded` (the server has it), `failed` (the
//!   server refused it, `code` says why), `remote` (downloaded from the server).
//!
//! Blocks are written before the file's record, so a record always means "every block is
//! here". A file's record and its outbox operation are written in one transaction.

use cairn_core::outbox::OutboxEntry;
use js_sys::{Object, Uint8Array};
use rexie::{Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use super::records::{get_field, outbox_record, set};
use super::{OUTBOX, finish};
use crate::ClientError;

pub const BLOCKS: &str = "blocks";
pub const FILES: &str = "files";

/// A file kept on this device.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub cid: String,
    pub name: String,
    pub content_type: String,
    pub size: f64,
    /// A JSON object, as text.
    pub metadata: String,
    pub state: String,
    pub created_at: f64,
    /// The server's resumable upload session, while one is open.
    pub upload_id: Option<String>,
    /// Why the server refused the file (`state: failed`).
    pub code: Option<String>,
}

/// Stores `blocks` (`(cid, bytes)`) in one transaction; returns the CIDs that were not
/// stored before (what to remove again if the file they belong to is abandoned).
pub async fn put_blocks(
    db: &Rexie,
    blocks: &[(String, Vec<u8>)],
) -> Result<Vec<String>, ClientError> {
    let arrays: Vec<(&str, Uint8Array)> = blocks
        .iter()
        .map(|(cid, bytes)| (cid.as_str(), Uint8Array::from(bytes.as_slice())))
        .collect();
    put_block_arrays(db, &arrays).await
}

/// [`put_blocks`] of blocks whose bytes are JavaScript arrays already: they are stored as
/// they are, not copied.
pub async fn put_block_arrays(
    db: &Rexie,
    blocks: &[(&str, Uint8Array)],
) -> Result<Vec<String>, ClientError> {
    let tx = db.transaction(&[BLOCKS], TransactionMode::ReadWrite)?;
    let store = tx.store(BLOCKS)?;
    // Every request is issued before any is awaited (IndexedDB runs them in order): whether
    // each block is there already, then its put (a block there is rewritten with the same
    // bytes, its CID's, which changes nothing) — one round trip, not two.
    let records = blocks
        .iter()
        .map(|(cid, bytes)| {
            let record = Object::new();
            set(&record, "cid", &JsValue::from_str(cid))?;
            set(&record, "bytes", bytes)?;
            Ok(JsValue::from(record))
        })
        .collect::<Result<Vec<_>, ClientError>>()?;
    let (present, written) = futures::future::join(
        futures::future::join_all(
            blocks
                .iter()
                .map(|(cid, _)| store.key_exists(JsValue::from_str(cid))),
        ),
        futures::future::join_all(records.iter().map(|r| store.put(r, None))),
    )
    .await;
    for result in written {
        result?;
    }
    let mut new = Vec::new();
    for ((cid, bytes), present) in blocks.iter().zip(present) {
        if !present? {
            new.push(((*cid).to_owned(), bytes.length() as usize));
        }
    }
    finish(tx, new.iter().map(|(_, n)| n).sum()).await?;
    Ok(new.into_iter().map(|(cid, _)| cid).collect())
}

/// A stored block's bytes, as the JavaScript array IndexedDB returned.
pub async fn get_block(db: &Rexie, cid: &str) -> Result<Option<Uint8Array>, ClientError> {
    let tx = db.transaction(&[BLOCKS], TransactionMode::ReadOnly)?;
    let record = tx.store(BLOCKS)?.get(JsValue::from_str(cid)).await?;
    finish(tx, 0).await?;
    Ok(record.and_then(|r| get_field(&r, "bytes").dyn_into::<Uint8Array>().ok()))
}

/// Several stored blocks, read in one transaction (`None` for those not stored).
pub async fn get_blocks(
    db: &Rexie,
    cids: &[String],
) -> Result<Vec<Option<Uint8Array>>, ClientError> {
    let tx = db.transaction(&[BLOCKS], TransactionMode::ReadOnly)?;
    let store = tx.store(BLOCKS)?;
    let found =
        futures::future::join_all(cids.iter().map(|c| store.get(JsValue::from_str(c)))).await;
    let mut out = Vec::with_capacity(found.len());
    for record in found {
        out.push(record?.and_then(|r| get_field(&r, "bytes").dyn_into::<Uint8Array>().ok()));
    }
    finish(tx, 0).await?;
    Ok(out)
}

/// Removes blocks.
pub async fn delete_blocks(db: &Rexie, cids: &[String]) -> Result<(), ClientError> {
    if cids.is_empty() {
        return Ok(());
    }
    let tx = db.transaction(&[BLOCKS], TransactionMode::ReadWrite)?;
    let store = tx.store(BLOCKS)?;
    for cid in cids {
        store.delete(JsValue::from_str(cid)).await?;
    }
    finish(tx, 0).await
}

fn file_record(entry: &FileEntry) -> Result<JsValue, ClientError> {
    let r = Object::new();
    let text = |v: &Option<String>| v.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    set(&r, "cid", &JsValue::from_str(&entry.cid))?;
    set(&r, "name", &JsValue::from_str(&entry.name))?;
    set(&r, "type", &JsValue::from_str(&entry.content_type))?;
    set(&r, "size", &JsValue::from_f64(entry.size))?;
    set(&r, "metadata", &JsValue::from_str(&entry.metadata))?;
    set(&r, "state", &JsValue::from_str(&entry.state))?;
    set(&r, "createdAt", &JsValue::from_f64(entry.created_at))?;
    set(&r, "uploadId", &text(&entry.upload_id))?;
    set(&r, "code", &text(&entry.code))?;
    Ok(r.into())
}

fn file_entry(record: &JsValue) -> Option<FileEntry> {
    let text = |key| get_field(record, key).as_string();
    Some(FileEntry {
        cid: text("cid")?,
        name: text("name").unwrap_or_default(),
        content_type: text("type").unwrap_or_default(),
        size: get_field(record, "size").as_f64()?,
        metadata: text("metadata").unwrap_or_else(|| "{}".into()),
        state: text("state").unwrap_or_default(),
        created_at: get_field(record, "createdAt").as_f64().unwrap_or(0.0),
        upload_id: text("uploadId"),
        code: text("code"),
    })
}

/// Writes (or replaces) a file's record.
pub async fn put_file(db: &Rexie, entry: &FileEntry) -> Result<(), ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadWrite)?;
    tx.store(FILES)?.put(&file_record(entry)?, None).await?;
    finish(tx, 0).await
}

/// Writes a file's record and queues `op` (new, without a `seq`) in one transaction.
pub async fn put_file_with_op(
    db: &Rexie,
    entry: Option<&FileEntry>,
    op: &OutboxEntry,
) -> Result<(), ClientError> {
    let tx = db.transaction(&[FILES, OUTBOX], TransactionMode::ReadWrite)?;
    if let Some(entry) = entry {
        tx.store(FILES)?.put(&file_record(entry)?, None).await?;
    }
    tx.store(OUTBOX)?
        .add(&outbox_record(op, false)?, None)
        .await?;
    finish(tx, 0).await
}

/// A file operation is done: its outbox entry `seq` leaves, and the file's record becomes
/// `entry` (if given), in one transaction.
pub async fn finish_op(db: &Rexie, seq: u64, entry: Option<&FileEntry>) -> Result<(), ClientError> {
    let tx = db.transaction(&[FILES, OUTBOX], TransactionMode::ReadWrite)?;
    if let Some(entry) = entry {
        tx.store(FILES)?.put(&file_record(entry)?, None).await?;
    }
    tx.store(OUTBOX)?
        .delete(JsValue::from_f64(seq as f64))
        .await?;
    finish(tx, 0).await
}

/// A file's record.
pub async fn get_file(db: &Rexie, cid: &str) -> Result<Option<FileEntry>, ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadOnly)?;
    let record = tx.store(FILES)?.get(JsValue::from_str(cid)).await?;
    finish(tx, 0).await?;
    Ok(record.as_ref().and_then(file_entry))
}

/// Removes a file's record.
pub async fn delete_file(db: &Rexie, cid: &str) -> Result<(), ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadWrite)?;
    tx.store(FILES)?.delete(JsValue::from_str(cid)).await?;
    finish(tx, 0).await
}

/// Every file record, by CID.
pub async fn list_files(db: &Rexie) -> Result<Vec<FileEntry>, ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadOnly)?;
    let records = tx.store(FILES)?.get_all(None, None).await?;
    finish(tx, 0).await?;
    Ok(records.iter().filter_map(file_entry).collect())
}

/// A file record as the application sees it (`metadata` parsed).
pub fn file_to_js(entry: &FileEntry) -> Result<JsValue, ClientError> {
    let r = file_record(entry)?;
    let metadata = js_sys::JSON::parse(&entry.metadata).unwrap_or_else(|_| Object::new().into());
    set(r.unchecked_ref(), "metadata", &metadata)?;
    Ok(r)
}
