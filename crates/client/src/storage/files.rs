//! Files in IndexedDB (schema version 3): the IPFS blocks of files kept on this device, and a
//! record per file.
//!
//! - `blocks` `{cid, bytes}` — leaves and DAG nodes by CID string; shared by every file that
//!   contains them (content addressing deduplicates).
//! - `files` `{cid, name, type, size, state, createdAt}` — `state` is where the file stands
//!   (`local`: only here; `uploaded`: the server has it).
//!
//! Blocks are written before the file's record, each batch in one transaction, so a record
//! always means "every block is here".

use js_sys::{Object, Uint8Array};
use rexie::{Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use super::finish;
use super::records::{get_field, set};
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
    pub state: String,
    pub created_at: f64,
}

/// Stores `blocks` (`(cid, bytes)`) in one transaction.
pub async fn put_blocks(db: &Rexie, blocks: &[(String, Vec<u8>)]) -> Result<(), ClientError> {
    let tx = db.transaction(&[BLOCKS], TransactionMode::ReadWrite)?;
    let store = tx.store(BLOCKS)?;
    let mut size = 0;
    for (cid, bytes) in blocks {
        let record = Object::new();
        set(&record, "cid", &JsValue::from_str(cid))?;
        set(&record, "bytes", &Uint8Array::from(bytes.as_slice()).into())?;
        store.put(&record, None).await?;
        size += bytes.len();
    }
    finish(tx, size).await
}

/// A stored block's bytes.
pub async fn get_block(db: &Rexie, cid: &str) -> Result<Option<Vec<u8>>, ClientError> {
    let tx = db.transaction(&[BLOCKS], TransactionMode::ReadOnly)?;
    let record = tx.store(BLOCKS)?.get(JsValue::from_str(cid)).await?;
    finish(tx, 0).await?;
    Ok(record.and_then(|r| {
        get_field(&r, "bytes")
            .dyn_into::<Uint8Array>()
            .ok()
            .map(|a| a.to_vec())
    }))
}

fn file_record(entry: &FileEntry) -> Result<JsValue, ClientError> {
    let r = Object::new();
    set(&r, "cid", &JsValue::from_str(&entry.cid))?;
    set(&r, "name", &JsValue::from_str(&entry.name))?;
    set(&r, "type", &JsValue::from_str(&entry.content_type))?;
    set(&r, "size", &JsValue::from_f64(entry.size))?;
    set(&r, "state", &JsValue::from_str(&entry.state))?;
    set(&r, "createdAt", &JsValue::from_f64(entry.created_at))?;
    Ok(r.into())
}

fn file_entry(record: &JsValue) -> Option<FileEntry> {
    let text = |key| get_field(record, key).as_string();
    Some(FileEntry {
        cid: text("cid")?,
        name: text("name").unwrap_or_default(),
        content_type: text("type").unwrap_or_default(),
        size: get_field(record, "size").as_f64()?,
        state: text("state").unwrap_or_default(),
        created_at: get_field(record, "createdAt").as_f64().unwrap_or(0.0),
    })
}

/// Writes (or replaces) a file's record.
pub async fn put_file(db: &Rexie, entry: &FileEntry) -> Result<(), ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadWrite)?;
    tx.store(FILES)?.put(&file_record(entry)?, None).await?;
    finish(tx, 0).await
}

/// A file's record.
pub async fn get_file(db: &Rexie, cid: &str) -> Result<Option<FileEntry>, ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadOnly)?;
    let record = tx.store(FILES)?.get(JsValue::from_str(cid)).await?;
    finish(tx, 0).await?;
    Ok(record.as_ref().and_then(file_entry))
}

/// Every file record, by CID.
pub async fn list_files(db: &Rexie) -> Result<Vec<FileEntry>, ClientError> {
    let tx = db.transaction(&[FILES], TransactionMode::ReadOnly)?;
    let records = tx.store(FILES)?.get_all(None, None).await?;
    finish(tx, 0).await?;
    Ok(records.iter().filter_map(file_entry).collect())
}
