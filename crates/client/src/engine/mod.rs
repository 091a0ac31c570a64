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

mod commit;
mod files;
mod sync;
mod transfer;

pub use self::commit::{Applied, Ticket};
pub(crate) use self::files::parse_cid;
pub use self::files::{BlobImport, PutOptions};
pub use self::sync::Handled;
pub use self::transfer::FileOp;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use cairn_core::outbox::{OpStatus, OutboxEntry};
use cairn_core::retry::RetryPolicy;
use cairn_core::{DocumentId, OpId};
use rexie::Rexie;
use wasm_bindgen::JsValue;

use crate::ClientError;
use crate::doc::{Document, LocalChange, Op, Seg};
use crate::storage;

/// Now, in milliseconds since the epoch (drivers may read the clock; the core may not).
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// A fresh operation id.
pub fn new_op_id() -> OpId {
    OpId::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}

#[derive(Debug, Default)]
struct State {
    docs: HashMap<DocumentId, Document>,
    /// Local changes waiting for the next group commit.
    commit: commit::Gathering,
    in_flight: Option<sync::InFlight>,
    next_request: u64,
    /// A file operation is being carried out (one at a time per engine).
    transferring: bool,
}

#[derive(Debug)]
struct Inner {
    name: String,
    db: Rexie,
    /// The group commit's own connection (see `storage::direct`).
    direct: storage::direct::Connection,
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
        // Both asked for at once: the second waits for the first's upgrade, if any.
        let (db, direct) =
            futures::future::join(storage::open(name), storage::direct::open(name)).await;
        let (db, direct) = (db?, direct?);
        let state = State {
            next_request: 1,
            ..State::default()
        };
        Ok(Self {
            inner: Rc::new(Inner {
                name: name.to_owned(),
                db,
                direct,
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

    pub(crate) fn direct(&self) -> &storage::direct::Connection {
        &self.inner.direct
    }

    fn state(&self) -> std::cell::RefMut<'_, State> {
        self.inner.state.borrow_mut()
    }

    /// Closes the database connection if no other clone (e.g. a pending write) still uses
    /// it; otherwise it closes when the last one is dropped.
    pub fn close(self) {
        if let Ok(inner) = Rc::try_unwrap(self.inner) {
            inner.direct.close();
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

    /// Like [`refresh`](Self::refresh), but only for a document already in memory (another
    /// tab stored rows of it); `false` when it is not loaded.
    pub async fn refresh_loaded(&self, id: &DocumentId) -> Result<bool, ClientError> {
        if !self.state().docs.contains_key(id) {
            return Ok(false);
        }
        self.refresh(id).await
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
        self.queue(id, change.map(|c| c.bytes), true).wait().await?;
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
        if let Some(c) = &change {
            self.queue(*id, Some(c.bytes.clone()), false).wait().await?;
        }
        Ok(change)
    }

    /// Applies `ops` to `id` now, if it is loaded, and queues the change for the next group
    /// commit (what the JavaScript API calls for each change: no `await` in between).
    pub fn change_now(&self, id: &DocumentId, ops: &[Op]) -> Result<Applied, ClientError> {
        let change = {
            let mut state = self.state();
            let Some(doc) = state.docs.get_mut(id) else {
                return Ok(Applied::NotLoaded);
            };
            doc.change(ops, now() as i64)?
        };
        Ok(match change {
            Some(c) => Applied::Queued(self.queue(*id, Some(c.bytes), false)),
            None => Applied::Unchanged,
        })
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
