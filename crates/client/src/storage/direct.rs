//! The group commit's write on a connection of its own, through `web_sys` directly: every
//! request is issued and none is awaited; one promise settles when the transaction commits
//! (or aborts). Through rexie each request has its own future and a pair of Rust closures
//! registered as its event handlers, which cost more than IndexedDB itself for the small
//! writes a sequential writer makes (the profile in the SDK's speed issue: 0.2 ms of 1.1 ms
//! per operation). A failed request aborts the transaction, so nothing of it is stored.

use js_sys::{Array, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbTransaction, IdbTransactionMode};

use super::records::{change_row, document_record, outbox_record};
use super::{CHANGES, DOCUMENTS, LocalWrite, OUTBOX, database_name, over_quota};
use crate::ClientError;

/// A second connection to the repository's database, for [`write_local`].
#[derive(Debug)]
pub struct Connection {
    db: IdbDatabase,
}

fn storage(e: impl std::fmt::Debug) -> ClientError {
    ClientError::Storage(format!("IndexedDB: {e:?}"))
}

/// The factory of the global scope (a window or a worker).
fn factory() -> Result<IdbFactory, ClientError> {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("indexedDB"))
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| ClientError::Storage("IndexedDB is not available here".into()))
}

/// Settles with the request's or transaction's outcome: `ok` resolves, `fail` rejects.
fn settled(target: &JsValue, ok: &str, fail: &[&str]) -> JsFuture {
    let promise = Promise::new(&mut |resolve, reject| {
        let _ = Reflect::set(target, &JsValue::from_str(ok), &resolve);
        for event in fail {
            let _ = Reflect::set(target, &JsValue::from_str(event), &reject);
        }
    });
    JsFuture::from(promise)
}

/// Opens the repository `name` at whatever version it has: call it once the schema is in
/// place (or right after asking for it: IndexedDB runs opens of a database in order, so this
/// one waits for the upgrade).
pub async fn open(name: &str) -> Result<Connection, ClientError> {
    let request: IdbOpenDbRequest = factory()?.open(&database_name(name)).map_err(storage)?;
    settled(&request, "onsuccess", &["onerror", "onblocked"])
        .await
        .map_err(storage)?;
    let db = request
        .result()
        .map_err(storage)?
        .dyn_into::<IdbDatabase>()
        .map_err(storage)?;
    Ok(Connection { db })
}

impl Connection {
    pub fn close(&self) {
        self.db.close();
    }
}

/// Writes a group commit's documents, change rows and outbox entries in one transaction;
/// resolves once it has committed. The transaction uses the browser's default durability
/// (committed means the browser has written it: it survives the page and the browser being
/// killed; Chromium's "relaxed" default does not wait for the disk to flush, as for every
/// IndexedDB write a page makes unless it asks for "strict").
pub async fn write_local(
    connection: &Connection,
    batch: &[LocalWrite],
    now: f64,
) -> Result<(), ClientError> {
    super::LOCAL_WRITE_TRANSACTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let new = batch.iter().any(|w| w.new);
    // The documents store only when a record is new: a narrower scope waits behind fewer
    // other transactions.
    let stores: &[&str] = if new {
        &[DOCUMENTS, CHANGES, OUTBOX]
    } else {
        &[CHANGES, OUTBOX]
    };
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    let tx: IdbTransaction = connection
        .db
        .transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)
        .map_err(storage)?;
    let done = settled(&tx, "oncomplete", &["onabort"]);
    let size = batch
        .iter()
        .flat_map(|w| &w.rows)
        .map(|r| 2 * r.len())
        .sum();
    if let Err(e) = issue(&tx, batch, new, now) {
        let _ = tx.abort();
        let _ = done.await;
        return Err(e);
    }
    if done.await.is_ok() {
        return Ok(());
    }
    Err(aborted(&tx, size).await)
}

/// Issues every request of the batch, awaiting none: IndexedDB runs them in order.
fn issue(
    tx: &IdbTransaction,
    batch: &[LocalWrite],
    new: bool,
    now: f64,
) -> Result<(), ClientError> {
    let changes = tx.object_store(CHANGES).map_err(storage)?;
    let outbox = tx.object_store(OUTBOX).map_err(storage)?;
    let documents = if new {
        Some(tx.object_store(DOCUMENTS).map_err(storage)?)
    } else {
        None
    };
    for write in batch {
        let doc = write.doc.to_string();
        if let (true, Some(documents)) = (write.new, &documents) {
            documents
                .put(&document_record(&doc, None, now)?)
                .map_err(storage)?;
        }
        for row in &write.rows {
            changes
                .add(&change_row(&doc, row, true)?)
                .map_err(storage)?;
        }
        for entry in &write.entries {
            outbox.add(&outbox_record(entry, false)?).map_err(storage)?;
        }
    }
    Ok(())
}

/// Why `tx` aborted: the browser's quota, or the error it names.
async fn aborted(tx: &IdbTransaction, size: usize) -> ClientError {
    let name = tx.error().map(|e| e.name());
    if name.as_deref().is_some_and(|n| n != "QuotaExceededError") {
        let message = tx.error().map(|e| e.message()).unwrap_or_default();
        return ClientError::Storage(format!(
            "the browser aborted a write: {} {message}",
            name.unwrap_or_default()
        ));
    }
    over_quota(size).await
}
