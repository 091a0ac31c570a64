//! The hot-document cache: recently used documents kept in memory as Automerge documents, so
//! a busy document is not rebuilt from the database on every request.
//!
//! It is never the truth. Every use first reads the changes committed after the cached
//! `seq_no` (one indexed query, usually empty), so it never serves data older than the last
//! commit, whichever server replica made it. Writers refresh inside their transaction, after
//! taking the document's row lock, so what they apply to is exactly what is committed. An
//! entry whose in-memory state may differ from the database (a failed apply or commit) is
//! evicted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use automerge::{Automerge, Change};
use cairn_core::DocumentId;
use tokio::sync::Mutex;

use crate::store::{ChangeRow, DocumentStore, Loaded, StoreError, Transaction};

/// One cached document.
#[derive(Debug, Default)]
pub struct Cached {
    id: Option<DocumentId>,
    pub doc: Automerge,
    /// The highest `seq_no` included in `doc`.
    pub seq: i64,
    loaded: bool,
    /// Changes included since the newest snapshot (how much compaction would save).
    pub since_snapshot: usize,
}

/// Where to read committed changes from.
#[allow(missing_debug_implementations)] // two trait-object references, nothing to show
pub enum Source<'a> {
    Store(&'a dyn DocumentStore),
    Tx(&'a mut dyn Transaction),
}

impl Cached {
    /// Whether the document is loaded with every row up to `seq` (within a document,
    /// `seq_no` order is commit order, so nothing older can still arrive).
    pub fn holds(&self, seq: i64) -> bool {
        self.loaded && self.seq >= seq
    }

    /// Takes a commit's changes announced by another replica, if this holds exactly the rows
    /// they follow (see [`crate::store::Transaction::notify`]); otherwise leaves it as it is.
    pub fn absorb(&mut self, committed: crate::store::Committed) -> Result<(), StoreError> {
        if !self.loaded || self.seq != committed.after || committed.seq <= committed.after {
            return Ok(());
        }
        let seq = committed.seq;
        self.apply_rows(committed.changes.into_iter().map(|c| (seq, c)).collect())
    }

    /// Brings `doc` up to date with what is committed in `source`.
    pub async fn refresh(&mut self, source: Source<'_>) -> Result<(), StoreError> {
        if !self.loaded {
            let loaded = match source {
                Source::Store(store) => store.load(&self.key_doc()).await,
                Source::Tx(tx) => tx.load(&self.key_doc()).await,
            };
            return self.load(loaded?);
        }
        let rows = match source {
            Source::Store(store) => store.changes_since(&self.key_doc(), self.seq).await?,
            Source::Tx(tx) => tx.changes_since(&self.key_doc(), self.seq).await?,
        };
        self.apply_rows(rows)
    }

    fn key_doc(&self) -> DocumentId {
        self.id.expect("entries are created with their id")
    }

    fn load(&mut self, loaded: Loaded) -> Result<(), StoreError> {
        let (doc, seq) = match loaded.snapshot {
            Some(s) => {
                let doc = Automerge::load(&s.bytes).map_err(|e| {
                    StoreError::Corrupt(format!("snapshot of {}: {e}", self.key_doc()))
                })?;
                (doc, s.upto_seq)
            }
            None => (Automerge::new(), 0),
        };
        self.doc = doc;
        self.seq = seq;
        self.loaded = true;
        self.since_snapshot = 0;
        self.apply_rows(loaded.changes)
    }

    fn apply_rows(&mut self, rows: Vec<ChangeRow>) -> Result<(), StoreError> {
        let Some(&(last, _)) = rows.last() else {
            return Ok(());
        };
        let count = rows.len();
        let changes = rows
            .into_iter()
            .map(|(_, bytes)| Change::from_bytes(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("change of {}: {e}", self.key_doc())))?;
        self.doc
            .apply_changes(changes)
            .map_err(|e| StoreError::Corrupt(format!("changes of {}: {e}", self.key_doc())))?;
        self.seq = last;
        self.since_snapshot += count;
        Ok(())
    }
}

/// An LRU map of document → cached document (each behind an async mutex: one user at a time).
#[derive(Debug)]
pub struct DocCache {
    entries: StdMutex<Lru>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Lru {
    map: HashMap<DocumentId, (Arc<Mutex<Cached>>, u64)>,
    tick: u64,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: StdMutex::new(Lru::default()),
            capacity: capacity.max(1),
        }
    }

    /// The entry for `document`, created (unloaded) if needed. An entry evicted while someone
    /// holds it stays valid for them; the next user gets a fresh one.
    pub fn entry(&self, document: DocumentId) -> Arc<Mutex<Cached>> {
        let mut lru = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        lru.tick += 1;
        let tick = lru.tick;
        let hit = lru.map.contains_key(&document);
        crate::metrics::cache_lookup(hit);
        let entry = lru.map.entry(document).or_insert_with(|| {
            (
                Arc::new(Mutex::new(Cached {
                    id: Some(document),
                    ..Cached::default()
                })),
                tick,
            )
        });
        entry.1 = tick;
        let found = entry.0.clone();
        if lru.map.len() > self.capacity
            && let Some(oldest) = lru.map.iter().min_by_key(|(_, (_, t))| *t).map(|(d, _)| *d)
        {
            lru.map.remove(&oldest);
        }
        found
    }

    /// Forgets `document` (its in-memory state may not match the database).
    /// The entry of `document` if it is cached (no lookup is counted, nothing is created).
    pub fn peek(&self, document: &DocumentId) -> Option<Arc<Mutex<Cached>>> {
        let lru = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        lru.map.get(document).map(|(entry, _)| entry.clone())
    }

    pub fn evict(&self, document: &DocumentId) {
        let mut lru = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        lru.map.remove(document);
    }

    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
