//! The IndexedDB layout (schema version 1), through rexie.
//!
//! - `documents`: `{ id: string, snapshot: Uint8Array, synced: string[] }`, key path `id`, one
//!   record per document: its saved Automerge bytes and the heads the server acknowledged.
//!
//! Later schema versions add stores (outbox, sync state, metadata); a version bump must keep
//! every existing store listed here, or idb deletes it on upgrade.

use cairn_core::{ChangeHash, DocumentId};
use js_sys::{Array, Object, Reflect, Uint8Array};
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use crate::ClientError;

const SCHEMA_VERSION: u32 = 1;
const DOCUMENTS: &str = "documents";

/// The IndexedDB database name for a repo called `name`.
pub(crate) fn database_name(name: &str) -> String {
    format!("cairn:{name}")
}

pub(crate) async fn open(name: &str) -> Result<Rexie, ClientError> {
    Ok(Rexie::builder(&database_name(name))
        .version(SCHEMA_VERSION)
        .add_object_store(ObjectStore::new(DOCUMENTS).key_path("id"))
        .build()
        .await?)
}

pub(crate) async fn delete(name: &str) -> Result<(), ClientError> {
    Ok(Rexie::delete(&database_name(name)).await?)
}

/// A stored document: its saved bytes and acknowledged heads.
pub(crate) struct Record {
    pub snapshot: Vec<u8>,
    pub synced: Vec<ChangeHash>,
}

/// Writes a document's record; resolves once the transaction has committed.
pub(crate) async fn put_document(
    db: &Rexie,
    id: &DocumentId,
    snapshot: &[u8],
    synced: &[ChangeHash],
) -> Result<(), ClientError> {
    let record = Object::new();
    set(&record, "id", &JsValue::from_str(&id.to_string()))?;
    set(&record, "snapshot", &Uint8Array::from(snapshot).into())?;
    let heads: Array = synced
        .iter()
        .map(|h| JsValue::from_str(&h.to_string()))
        .collect();
    set(&record, "synced", &heads.into())?;
    let tx = db.transaction(&[DOCUMENTS], TransactionMode::ReadWrite)?;
    tx.store(DOCUMENTS)?.put(&record, None).await?;
    tx.done().await?;
    Ok(())
}

/// A document's record, if it is stored.
pub(crate) async fn get_document(
    db: &Rexie,
    id: &DocumentId,
) -> Result<Option<Record>, ClientError> {
    let tx = db.transaction(&[DOCUMENTS], TransactionMode::ReadOnly)?;
    let record = tx
        .store(DOCUMENTS)?
        .get(JsValue::from_str(&id.to_string()))
        .await?;
    tx.done().await?;
    let Some(record) = record else {
        return Ok(None);
    };
    let field = |key: &str| Reflect::get(&record, &JsValue::from_str(key)).ok();
    let snapshot = field("snapshot")
        .and_then(|v| v.dyn_into::<Uint8Array>().ok())
        .ok_or_else(|| ClientError::Storage(format!("record for {id} has no snapshot")))?;
    let synced = field("synced")
        .and_then(|v| v.dyn_into::<Array>().ok())
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_string()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Record {
        snapshot: snapshot.to_vec(),
        synced,
    }))
}

/// The ids of every stored document.
pub(crate) async fn list_ids(db: &Rexie) -> Result<Vec<String>, ClientError> {
    let tx = db.transaction(&[DOCUMENTS], TransactionMode::ReadOnly)?;
    let keys = tx.store(DOCUMENTS)?.get_all_keys(None, None).await?;
    tx.done().await?;
    Ok(keys.into_iter().filter_map(|k| k.as_string()).collect())
}

fn set(target: &Object, key: &str, value: &JsValue) -> Result<(), ClientError> {
    Reflect::set(target, &JsValue::from_str(key), value)
        .map(|_| ())
        .map_err(|_| ClientError::Storage(format!("cannot build the {key} field")))
}
