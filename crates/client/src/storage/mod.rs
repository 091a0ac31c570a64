//! The IndexedDB layout (schema version 4), through rexie (the group commit writes through a
//! connection of its own: [`direct`]). Works in windows and workers (idb takes `indexedDB`
//! from the global scope).
//!
//! - `documents` `{id, snapshot?: Uint8Array, created}` — one record per document; the
//!   snapshot is Automerge's saved form of the changes folded into it.
//! - `changes` `{key (auto), doc, bytes, local}` — change rows since the snapshot, local and
//!   remote; index `by_doc` on `[doc, key]`.
//! - `outbox` `{seq (auto), id, doc, changes: Uint8Array[], attempts, nextAttemptAt, status,
//!   code, createdAt}` — operations waiting for the server's ack; index `by_status` (version 4)
//!   counts the failed ones without reading any entry. One entry holds the changes a group
//!   commit made to one document (up to [`ENTRY_CHANGES`]).
//! - `sync` `{doc, heads: string[]}` — the heads the server acknowledged, per document.
//! - `meta` `{key, value}` — the bearer token (for the Service Worker) and markers.
//! - `blocks`, `files` — files kept on this device (see [`files`]; added in version 3). File
//!   uploads and deletions are outbox entries too (`kind`: `file-upload`, `file-delete`).
//!
//! A local change and its outbox entry are written in the same transaction; a group commit
//! writes one change row (the changes concatenated, which Automerge loads as one) and one
//! outbox entry per document, not one per change. Keys grow in
//! commit order across tabs (IndexedDB serializes read-write transactions on a store), so
//! "rows after key k" is an exact incremental read. Version 1 had only `documents` (with a
//! `synced` field, now ignored: the first sync after the upgrade re-sends, harmlessly).

pub mod direct;
pub mod files;
mod quota;
mod records;

use cairn_core::outbox::OutboxEntry;
use cairn_core::{ChangeHash, DocumentId};
use js_sys::{Array, Uint8Array};
use rexie::{Index, KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::JsValue;

pub use self::records::outbox_entry_to_js;
use self::records::{document_record, get_field, outbox_entry, outbox_record, set};
use crate::ClientError;

const SCHEMA_VERSION: u32 = 4;
pub const DOCUMENTS: &str = "documents";
pub const CHANGES: &str = "changes";
pub const OUTBOX: &str = "outbox";
pub const SYNC: &str = "sync";
pub const META: &str = "meta";
const BY_DOC: &str = "by_doc";
const BY_STATUS: &str = "by_status";

/// At most this many changes (and [`ENTRY_BYTES`]) go into one outbox entry and change row:
/// a sync request carries up to 2,000 changes, so an entry always fits in one.
pub const ENTRY_CHANGES: usize = 1_000;
pub const ENTRY_BYTES: usize = 1 << 20;

/// The IndexedDB database name for a repo called `name`.
pub fn database_name(name: &str) -> String {
    format!("cairn:{name}")
}

pub async fn open(name: &str) -> Result<Rexie, ClientError> {
    for store in [DOCUMENTS, CHANGES, OUTBOX, SYNC, META, BY_DOC, BY_STATUS] {
        wasm_bindgen::intern(store);
    }
    Ok(Rexie::builder(&database_name(name))
        .version(SCHEMA_VERSION)
        .add_object_store(ObjectStore::new(DOCUMENTS).key_path("id"))
        .add_object_store(
            ObjectStore::new(CHANGES)
                .key_path("key")
                .auto_increment(true)
                .add_index(Index::new_array(BY_DOC, ["doc", "key"])),
        )
        .add_object_store(
            ObjectStore::new(OUTBOX)
                .key_path("seq")
                .auto_increment(true)
                .add_index(Index::new(BY_STATUS, "status")),
        )
        .add_object_store(ObjectStore::new(SYNC).key_path("doc"))
        .add_object_store(ObjectStore::new(META).key_path("key"))
        .add_object_store(ObjectStore::new(files::BLOCKS).key_path("cid"))
        .add_object_store(ObjectStore::new(files::FILES).key_path("cid"))
        .build()
        .await?)
}

pub async fn delete(name: &str) -> Result<(), ClientError> {
    Ok(Rexie::delete(&database_name(name)).await?)
}

/// Waits for `tx` to finish; an abort is an error. Every request of the transaction succeeded
/// (a failed one is an error before this), and this crate never aborts one, so the browser
/// aborted it at commit: IndexedDB does that when the origin is over its storage quota (the
/// reason itself is not exposed by rexie). `size` is about how many bytes it tried to add.
async fn finish(tx: rexie::Transaction, size: usize) -> Result<(), ClientError> {
    if tx.done().await?.is_committed() {
        return Ok(());
    }
    Err(over_quota(size).await)
}

/// The error of a write of about `size` bytes the browser aborted for want of quota.
async fn over_quota(size: usize) -> ClientError {
    let usage = match quota::estimate().await {
        Some((usage, quota)) => {
            format!("; the storage manager reports {usage} of {quota} bytes used")
        }
        None => String::new(),
    };
    ClientError::Quota(format!(
        "the browser aborted a write of about {size} bytes at commit (out of storage quota){usage}"
    ))
}

/// `[doc, after]` (exclusive) to `[doc, +∞]`: a document's change rows after key `after`.
fn rows_after(doc: &str, after: f64) -> Result<KeyRange, ClientError> {
    let lower: Array = [JsValue::from_str(doc), JsValue::from_f64(after)]
        .iter()
        .collect();
    let upper: Array = [JsValue::from_str(doc), JsValue::from_f64(f64::INFINITY)]
        .iter()
        .collect();
    Ok(KeyRange::bound(&lower, &upper, Some(true), Some(false)).map_err(rexie::Error::from)?)
}

fn rows(values: Vec<JsValue>) -> Vec<(f64, Vec<u8>)> {
    values
        .iter()
        .filter_map(|r| {
            let key = get_field(r, "key").as_f64()?;
            let bytes = get_field(r, "bytes")
                .dyn_into::<Uint8Array>()
                .ok()?
                .to_vec();
            Some((key, bytes))
        })
        .collect()
}

use wasm_bindgen::JsCast;

/// What is stored of a document.
#[derive(Debug)]
pub struct Stored {
    pub snapshot: Option<Vec<u8>>,
    pub rows: Vec<(f64, Vec<u8>)>,
    pub server_heads: Vec<ChangeHash>,
}

/// A document's record, change rows and acknowledged heads; `None` if it is not stored.
pub async fn read_document(db: &Rexie, id: &DocumentId) -> Result<Option<Stored>, ClientError> {
    let key = id.to_string();
    let tx = db.transaction(&[DOCUMENTS, CHANGES, SYNC], TransactionMode::ReadOnly)?;
    let Some(record) = tx.store(DOCUMENTS)?.get(JsValue::from_str(&key)).await? else {
        finish(tx, 0).await?;
        return Ok(None);
    };
    let snapshot = get_field(&record, "snapshot")
        .dyn_into::<Uint8Array>()
        .ok()
        .map(|a| a.to_vec());
    let changes = tx
        .store(CHANGES)?
        .index(BY_DOC)?
        .get_all(Some(rows_after(&key, f64::NEG_INFINITY)?), None)
        .await?;
    let sync = tx.store(SYNC)?.get(JsValue::from_str(&key)).await?;
    finish(tx, 0).await?;
    let server_heads = sync
        .map(|s| records::heads(&get_field(&s, "heads")))
        .unwrap_or_default();
    Ok(Some(Stored {
        snapshot,
        rows: rows(changes),
        server_heads,
    }))
}

/// A document's change rows after key `after`.
pub async fn read_rows_after(
    db: &Rexie,
    id: &DocumentId,
    after: f64,
) -> Result<Vec<(f64, Vec<u8>)>, ClientError> {
    let tx = db.transaction(&[CHANGES], TransactionMode::ReadOnly)?;
    let found = tx
        .store(CHANGES)?
        .index(BY_DOC)?
        .get_all(Some(rows_after(&id.to_string(), after)?), None)
        .await?;
    finish(tx, 0).await?;
    Ok(rows(found))
}

/// The ids of every stored document.
pub async fn list_documents(db: &Rexie) -> Result<Vec<String>, ClientError> {
    let tx = db.transaction(&[DOCUMENTS], TransactionMode::ReadOnly)?;
    let keys = tx.store(DOCUMENTS)?.get_all_keys(None, None).await?;
    finish(tx, 0).await?;
    Ok(keys.into_iter().filter_map(|k| k.as_string()).collect())
}

/// What one group commit writes for one document: its record (created if `new`) and its
/// new changes, as rows and outbox entries (`rows[i]` is the concatenation of the changes of
/// `entries[i]`).
#[derive(Debug)]
pub struct LocalWrite {
    pub doc: DocumentId,
    pub new: bool,
    pub rows: Vec<Vec<u8>>,
    pub entries: Vec<OutboxEntry>,
}

/// How many local-write transactions this module has run (tests check group commit).
pub static LOCAL_WRITE_TRANSACTIONS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Awaits requests issued together; the first error wins.
async fn all<T>(
    requests: impl IntoIterator<Item = impl std::future::Future<Output = rexie::Result<T>>>,
) -> Result<(), ClientError> {
    for result in futures::future::join_all(requests).await {
        result?;
    }
    Ok(())
}

/// Every outbox entry, oldest first.
pub async fn read_outbox(db: &Rexie) -> Result<Vec<OutboxEntry>, ClientError> {
    let tx = db.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
    let all = tx.store(OUTBOX)?.get_all(None, None).await?;
    finish(tx, 0).await?;
    all.iter().map(outbox_entry).collect()
}

/// How many outbox entries are still to deliver (every one but the failed), counted by
/// IndexedDB without reading them.
pub async fn count_undelivered(db: &Rexie) -> Result<usize, ClientError> {
    let tx = db.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
    let outbox = tx.store(OUTBOX)?;
    let failed = KeyRange::only(&JsValue::from_str("failed")).map_err(rexie::Error::from)?;
    let (all, failed) = futures::future::join(
        outbox.count(None),
        outbox.index(BY_STATUS)?.count(Some(failed)),
    )
    .await;
    let (all, failed) = (all?, failed?);
    finish(tx, 0).await?;
    Ok(all.saturating_sub(failed) as usize)
}

/// In one transaction: marks every queued upload of file `cid` cancelled (an uploader sees it
/// before its next piece and stops), and queues `op` (new) after them.
pub async fn cancel_uploads_and_queue(
    db: &Rexie,
    cid: &str,
    op: &OutboxEntry,
) -> Result<(), ClientError> {
    let tx = db.transaction(&[OUTBOX], TransactionMode::ReadWrite)?;
    let outbox = tx.store(OUTBOX)?;
    for record in outbox.get_all(None, None).await? {
        let upload = get_field(&record, "kind").as_string().as_deref() == Some("file-upload");
        if upload
            && get_field(&record, "cid").as_string().as_deref() == Some(cid)
            && get_field(&record, "cancelled").as_bool() != Some(true)
        {
            set(record.unchecked_ref(), "cancelled", &JsValue::TRUE)?;
            outbox.put(&record, None).await?;
        }
    }
    outbox.add(&outbox_record(op, false)?, None).await?;
    finish(tx, 0).await
}

/// One outbox entry by its key; `None` once it has left (acknowledged or removed).
pub async fn read_outbox_entry(db: &Rexie, seq: u64) -> Result<Option<OutboxEntry>, ClientError> {
    let tx = db.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
    let record = tx.store(OUTBOX)?.get(JsValue::from_f64(seq as f64)).await?;
    finish(tx, 0).await?;
    record.as_ref().map(outbox_entry).transpose()
}

/// The fields of an outbox record that [`update_outbox`] writes: its delivery state.
const DELIVERY_FIELDS: [&str; 4] = ["attempts", "nextAttemptAt", "status", "code"];

/// Stores new delivery states (attempts, next attempt, status, code) of outbox entries read
/// earlier. Only those fields are written, onto the record as it is stored now: what changed
/// since it was read (an upload cancelled by a `deleteFile` meanwhile) stays, and an entry that
/// left meanwhile (acknowledged, removed) is not written back.
pub async fn update_outbox(db: &Rexie, entries: &[OutboxEntry]) -> Result<(), ClientError> {
    if entries.is_empty() {
        return Ok(());
    }
    let tx = db.transaction(&[OUTBOX], TransactionMode::ReadWrite)?;
    let outbox = tx.store(OUTBOX)?;
    let updates = entries
        .iter()
        .map(|e| outbox_record(e, true))
        .collect::<Result<Vec<_>, _>>()?;
    let stored = futures::future::join_all(
        entries
            .iter()
            .map(|e| outbox.get(JsValue::from_f64(e.seq as f64))),
    )
    .await;
    let mut puts = Vec::new();
    for (update, record) in updates.iter().zip(stored) {
        let Some(record) = record? else { continue };
        for field in DELIVERY_FIELDS {
            set(record.unchecked_ref(), field, &get_field(update, field))?;
        }
        puts.push(record);
    }
    all(puts.iter().map(|r| outbox.put(r, None))).await?;
    finish(tx, 0).await
}

/// What a server answer changes for one document.
#[derive(Debug)]
pub struct Received {
    pub doc: DocumentId,
    /// Bytes to store as a remote change row (empty: nothing new).
    pub data: Vec<u8>,
    /// The server's heads, when known.
    pub server_heads: Option<Vec<ChangeHash>>,
}

/// Stores what the server sent and removes acknowledged outbox entries, in one transaction.
pub async fn write_received(
    db: &Rexie,
    received: &[Received],
    acked: &[u64],
    now: f64,
) -> Result<(), ClientError> {
    let tx = db.transaction(
        &[DOCUMENTS, CHANGES, SYNC, OUTBOX],
        TransactionMode::ReadWrite,
    )?;
    let (documents, changes, sync, outbox) = (
        tx.store(DOCUMENTS)?,
        tx.store(CHANGES)?,
        tx.store(SYNC)?,
        tx.store(OUTBOX)?,
    );
    for r in received {
        let doc = r.doc.to_string();
        if documents.get(JsValue::from_str(&doc)).await?.is_none() {
            documents
                .put(&document_record(&doc, None, now)?, None)
                .await?;
        }
        if !r.data.is_empty() {
            changes
                .add(&records::change_row(&doc, &r.data, false)?, None)
                .await?;
        }
        if let Some(heads) = &r.server_heads {
            sync.put(&records::sync_record(&doc, heads)?, None).await?;
        }
    }
    all(acked
        .iter()
        .map(|seq| outbox.delete(JsValue::from_f64(*seq as f64))))
    .await?;
    finish(tx, received.iter().map(|r| r.data.len()).sum()).await?;
    Ok(())
}

/// Makes sure a record exists for `id` (a document found on the server, not yet received).
pub async fn ensure_document(db: &Rexie, id: &DocumentId, now: f64) -> Result<(), ClientError> {
    write_received(
        db,
        &[Received {
            doc: *id,
            data: Vec::new(),
            server_heads: None,
        }],
        &[],
        now,
    )
    .await
}

/// Folds a document's change rows into its snapshot: `save` is called inside the transaction
/// with the stored snapshot (as IndexedDB returned it: copied into wasm only if `save` needs
/// it) and every row still stored; rows up to the last one it saw are deleted.
pub async fn compact(
    db: &Rexie,
    id: &DocumentId,
    now: f64,
    save: impl FnOnce(Option<Uint8Array>, Vec<(f64, Vec<u8>)>) -> Result<Vec<u8>, ClientError>,
) -> Result<(), ClientError> {
    let doc = id.to_string();
    let tx = db.transaction(&[DOCUMENTS, CHANGES], TransactionMode::ReadWrite)?;
    let documents = tx.store(DOCUMENTS)?;
    let changes = tx.store(CHANGES)?;
    let (record, stored) = futures::future::join(
        documents.get(JsValue::from_str(&doc)),
        changes
            .index(BY_DOC)?
            .get_all(Some(rows_after(&doc, f64::NEG_INFINITY)?), None),
    )
    .await;
    let snapshot = record?
        .map(|r| get_field(&r, "snapshot"))
        .and_then(|s| s.dyn_into::<Uint8Array>().ok());
    let stored = rows(stored?);
    let keys: Vec<f64> = stored.iter().map(|(k, _)| *k).collect();
    let snapshot = save(snapshot, stored)?;
    documents
        .put(&document_record(&doc, Some(&snapshot), now)?, None)
        .await?;
    all(keys
        .into_iter()
        .map(|key| changes.delete(JsValue::from_f64(key))))
    .await?;
    finish(tx, 0).await?;
    Ok(())
}

/// Removes a document and everything about it (its queued changes too; uploads of files
/// attached to it stay queued).
pub async fn delete_document(db: &Rexie, id: &DocumentId) -> Result<(), ClientError> {
    let doc = id.to_string();
    let tx = db.transaction(
        &[DOCUMENTS, CHANGES, SYNC, OUTBOX],
        TransactionMode::ReadWrite,
    )?;
    tx.store(DOCUMENTS)?.delete(JsValue::from_str(&doc)).await?;
    tx.store(SYNC)?.delete(JsValue::from_str(&doc)).await?;
    let changes = tx.store(CHANGES)?;
    for (key, _) in rows(
        changes
            .index(BY_DOC)?
            .get_all(Some(rows_after(&doc, f64::NEG_INFINITY)?), None)
            .await?,
    ) {
        changes.delete(JsValue::from_f64(key)).await?;
    }
    let outbox = tx.store(OUTBOX)?;
    for record in outbox.get_all(None, None).await? {
        let changes = get_field(&record, "kind")
            .as_string()
            .is_none_or(|k| k == "changes");
        if changes && get_field(&record, "doc").as_string().as_deref() == Some(doc.as_str()) {
            outbox.delete(get_field(&record, "seq")).await?;
        }
    }
    finish(tx, 0).await?;
    Ok(())
}

/// A `meta` value.
pub async fn get_meta(db: &Rexie, key: &str) -> Result<JsValue, ClientError> {
    let tx = db.transaction(&[META], TransactionMode::ReadOnly)?;
    let record = tx.store(META)?.get(JsValue::from_str(key)).await?;
    finish(tx, 0).await?;
    Ok(record.map_or(JsValue::UNDEFINED, |r| get_field(&r, "value")))
}

pub async fn set_meta(db: &Rexie, key: &str, value: &JsValue) -> Result<(), ClientError> {
    let record = js_sys::Object::new();
    set(&record, "key", &JsValue::from_str(key))?;
    set(&record, "value", value)?;
    let tx = db.transaction(&[META], TransactionMode::ReadWrite)?;
    tx.store(META)?.put(&record, None).await?;
    finish(tx, 0).await?;
    Ok(())
}
