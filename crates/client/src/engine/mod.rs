//! The repository engine: documents in memory over their IndexedDB records, local changes
//! written with their outbox entries in group-committed transactions, and the client side of
//! sync rounds (build a request from the outbox, apply an answer or a push, account for
//! failures), and files: kept on the device (`files`), uploaded, deleted and downloaded
//! through the outbox and the file API (`transfer`). Transport (fetch, WebSocket, timers, tabs) is the caller's: the JavaScript
//! wrapper, or [`Engine::drain`] for a Service Worker.
//!
//! IndexedDB is the truth. Several engines (tabs, a worker) may share one database: each
//! reads rows written by the others (`refresh`), and the outbox is read from storage at every
//! round. No `RefCell` borrow is held across an `await`.

mod files;
mod sync;
mod transfer;

pub use self::files::{BlobImport, PutOptions};
pub use self::sync::Handled;
pub use self::transfer::FileOp;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use cairn_core::outbox::{OpKind, OpStatus, OutboxEntry};
use cairn_core::retry::RetryPolicy;
use cairn_core::{DocumentId, OpId};
use futures::channel::oneshot;
use rexie::Rexie;
use wasm_bindgen::JsValue;

use crate::ClientError;
use crate::doc::{Document, LocalChange, Op, Seg};
use crate::storage::{self, LocalWrite};

/// Fold a document's change rows into its snapshot once this many piled up.
const COMPACT_EVERY: usize = 256;

/// Now, in milliseconds since the epoch (drivers may read the clock; the core may not).
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// A fresh operation id.
pub fn new_op_id() -> OpId {
    OpId::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}

type Waiter = oneshot::Sender<Result<(), ClientError>>;

#[derive(Debug, Default)]
struct State {
    docs: HashMap<DocumentId, Document>,
    /// Local writes waiting for the next group commit.
    pending: Vec<(LocalWrite, Waiter)>,
    flushing: bool,
    in_flight: Option<sync::InFlight>,
    next_request: u64,
    /// A file operation is being carried out (one at a time per engine).
    transferring: bool,
}

#[derive(Debug)]
struct Inner {
    name: String,
    db: Rexie,
    state: RefCell<State>,
    policy: RetryPolicy,
}

/// An open repository. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Rc<Inner>,
}

impl Engine {
    /// Opens (creating or upgrading) the repository `name`.
    pub async fn open(name: &str) -> Result<Self, ClientError> {
        let db = storage::open(name).await?;
        let state = State {
            next_request: 1,
            ..State::default()
        };
        Ok(Self {
            inner: Rc::new(Inner {
                name: name.to_owned(),
                db,
                state: RefCell::new(state),
                policy: RetryPolicy::default(),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn db(&self) -> &Rexie {
        &self.inner.db
    }

    fn state(&self) -> std::cell::RefMut<'_, State> {
        self.inner.state.borrow_mut()
    }

    /// Closes the database connection if no other clone (e.g. a pending write) still uses
    /// it; otherwise it closes when the last one is dropped.
    pub fn close(self) {
        if let Ok(inner) = Rc::try_unwrap(self.inner) {
            inner.db.close();
        }
    }

    /// Loads `id` into memory if it is stored; whether it is.
    pub async fn load(&self, id: &DocumentId) -> Result<bool, ClientError> {
        if self.state().docs.contains_key(id) {
            return Ok(true);
        }
        let Some(stored) = storage::read_document(self.db(), id).await? else {
            return Ok(false);
        };
        let mut doc = Document::load(*id, stored.snapshot.as_deref(), stored.rows)?;
        doc.server_heads = stored.server_heads;
        // Another call may have loaded it meanwhile; keep the first.
        self.state().docs.entry(*id).or_insert(doc);
        Ok(true)
    }

    /// Reads rows other engines stored since this one last looked; whether `id` changed.
    pub async fn refresh(&self, id: &DocumentId) -> Result<bool, ClientError> {
        let Some(after) = self.state().docs.get(id).map(|d| d.last_row) else {
            return self.load(id).await;
        };
        let rows = storage::read_rows_after(self.db(), id, after).await?;
        self.with_doc(id, |d| d.apply_rows(rows))?
    }

    /// Runs `f` on the loaded document `id`.
    pub fn with_doc<T>(
        &self,
        id: &DocumentId,
        f: impl FnOnce(&mut Document) -> T,
    ) -> Result<T, ClientError> {
        let mut state = self.state();
        let doc = state
            .docs
            .get_mut(id)
            .ok_or_else(|| ClientError::NotFound(id.to_string()))?;
        Ok(f(doc))
    }

    /// The ids of every stored document.
    pub async fn list(&self) -> Result<Vec<DocumentId>, ClientError> {
        let ids = storage::list_documents(self.db()).await?;
        ids.iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| ClientError::Storage(format!("bad stored id {s}: {e}")))
            })
            .collect()
    }

    /// A new document holding `initial` (a plain object), stored with its first change.
    pub async fn create(&self, initial: &JsValue) -> Result<DocumentId, ClientError> {
        let id = DocumentId::from_random_bytes(*uuid::Uuid::new_v4().as_bytes());
        let ops: Vec<Op> = match initial.dyn_ref::<js_sys::Object>() {
            Some(object) if !initial.is_null() => js_sys::Object::entries(object)
                .iter()
                .map(|pair| {
                    let pair: js_sys::Array = pair.unchecked_into();
                    Op::Put {
                        path: vec![Seg::Key(pair.get(0).as_string().unwrap_or_default())],
                        value: pair.get(1),
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut doc = Document::new(id);
        let change = doc.change(&ops, now() as i64)?;
        self.state().docs.insert(id, doc);
        self.commit(id, change, true).await?;
        Ok(id)
    }

    /// Applies `ops` to `id` as one change; resolves once the change and its outbox entry are
    /// committed to IndexedDB. Returns the change (`None` if nothing changed).
    pub async fn change(
        &self,
        id: &DocumentId,
        ops: &[Op],
    ) -> Result<Option<LocalChange>, ClientError> {
        self.load(id).await?;
        let change = self.with_doc(id, |d| d.change(ops, now() as i64))??;
        if change.is_some() {
            self.commit(*id, change.clone(), false).await?;
        }
        Ok(change)
    }

    /// Queues a local write for the next group commit and waits for it.
    async fn commit(
        &self,
        doc: DocumentId,
        change: Option<LocalChange>,
        new: bool,
    ) -> Result<(), ClientError> {
        let entry = change.as_ref().map(|c| OutboxEntry {
            id: new_op_id(),
            seq: 0, // the database assigns it
            kind: OpKind::DocumentChanges {
                document: doc,
                changes: vec![c.bytes.clone()],
            },
            attempts: 0,
            next_attempt_at: now() as u64,
            status: OpStatus::Pending,
            created_at: now() as u64,
            last_error: None,
        });
        let write = LocalWrite {
            doc,
            new,
            bytes: change.map(|c| c.bytes),
            entry,
        };
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state();
            state.pending.push((write, tx));
            !std::mem::replace(&mut state.flushing, true)
        };
        if start {
            // Runs after the current task: every change made until then shares one transaction.
            let engine = self.clone();
            wasm_bindgen_futures::spawn_local(async move { engine.flush().await });
        }
        rx.await
            .map_err(|_| ClientError::Storage("the write was abandoned".into()))?
    }

    async fn flush(&self) {
        loop {
            let batch = std::mem::take(&mut self.state().pending);
            if batch.is_empty() {
                self.state().flushing = false;
                return;
            }
            let (writes, waiters): (Vec<LocalWrite>, Vec<Waiter>) = batch.into_iter().unzip();
            match storage::write_local(self.db(), &writes, now()).await {
                Ok(()) => {
                    waiters.into_iter().for_each(|w| {
                        let _ = w.send(Ok(()));
                    });
                    let mut written: Vec<DocumentId> = Vec::new();
                    for w in writes.iter().filter(|w| w.bytes.is_some()) {
                        let _ = self.with_doc(&w.doc, |d| d.rows_since_snapshot += 1);
                        if !written.contains(&w.doc) {
                            written.push(w.doc);
                        }
                    }
                    for id in written {
                        let _ = self.maybe_compact(&id).await;
                    }
                }
                Err(e) => {
                    // Nothing of the batch is stored: forget the in-memory state of its
                    // documents (reloaded from storage on next use) and fail every write made
                    // on top of it, so memory and storage agree again.
                    let failed: Vec<DocumentId> = writes.iter().map(|w| w.doc).collect();
                    let later = {
                        let mut state = self.state();
                        failed.iter().for_each(|id| {
                            state.docs.remove(id);
                        });
                        let (later, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending)
                            .into_iter()
                            .partition(|(w, _)| failed.contains(&w.doc));
                        state.pending = keep;
                        later
                    };
                    waiters
                        .into_iter()
                        .chain(later.into_iter().map(|(_, w)| w))
                        .for_each(|w| {
                            let _ = w.send(Err(e.clone()));
                        });
                }
            }
        }
    }

    /// Folds `id`'s change rows into a snapshot when enough piled up.
    pub(crate) async fn maybe_compact(&self, id: &DocumentId) -> Result<(), ClientError> {
        let due = self
            .with_doc(id, |d| d.rows_since_snapshot >= COMPACT_EVERY)
            .unwrap_or(false);
        if !due {
            return Ok(());
        }
        let engine = self.clone();
        storage::compact(self.db(), id, now(), move |rows| {
            engine.with_doc(id, |d| {
                d.apply_rows(rows)?;
                d.rows_since_snapshot = 0;
                Ok(d.save())
            })?
        })
        .await
    }

    /// Merges bytes another tab already stored (memory only); whether `id` changed.
    pub fn absorb(&self, id: &DocumentId, data: &[u8]) -> Result<bool, ClientError> {
        match self.state().docs.get_mut(id) {
            Some(doc) => doc.absorb(data),
            None => Ok(false),
        }
    }

    /// Removes the local copy of `id` (its pending operations too).
    pub async fn delete(&self, id: &DocumentId) -> Result<(), ClientError> {
        self.state().docs.remove(id);
        storage::delete_document(self.db(), id).await
    }

    /// Every outbox entry, oldest first, as the application sees them.
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, ClientError> {
        let mut entries = storage::read_outbox(self.db()).await?;
        let state = self.state();
        if let Some(f) = &state.in_flight {
            entries
                .iter_mut()
                .filter(|e| f.ops.contains(&e.id))
                .for_each(|e| e.status = OpStatus::InFlight);
        }
        Ok(entries)
    }

    /// How many change rows are stored for `id` (compaction folds them into the snapshot).
    pub async fn stored_rows(&self, id: &DocumentId) -> Result<usize, ClientError> {
        Ok(storage::read_rows_after(self.db(), id, f64::NEG_INFINITY)
            .await?
            .len())
    }

    /// Saves the bearer token where a Service Worker can find it.
    pub async fn set_token(&self, token: &str) -> Result<(), ClientError> {
        storage::set_meta(self.db(), "token", &JsValue::from_str(token)).await
    }

    pub async fn token(&self) -> Result<Option<String>, ClientError> {
        Ok(storage::get_meta(self.db(), "token").await?.as_string())
    }
}

use wasm_bindgen::JsCast;
