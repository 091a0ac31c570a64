//! Group commit of local changes: every change made before the running commit finishes goes
//! into the next one, a single IndexedDB transaction that writes, per document, one change
//! row and one outbox entry holding all its new changes (split at
//! [`storage::ENTRY_CHANGES`]). Each document of a commit has one waiter that every change
//! of it shares, so a burst of N changes costs a few transactions and records, not N.
//!
//! What it keeps: a change resolves only once it and its outbox entry are committed; if a
//! commit fails, nothing of it is stored, the documents it touched are dropped from memory
//! (reloaded from storage on next use) and every change made on top of them fails too.
//! Compaction (folding rows into the snapshot) runs between commits, only while a document
//! has no change waiting, so a snapshot never holds a change that is not yet durable.

use std::collections::HashMap;

use cairn_core::DocumentId;
use cairn_core::outbox::{OpKind, OutboxEntry};
use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;

use super::files::new_entry;
use super::{Engine, now};
use crate::ClientError;
use crate::doc::Document;
use crate::storage::{self, ENTRY_BYTES, ENTRY_CHANGES, LocalWrite};

type Outcome = Result<(), ClientError>;

/// What [`Engine::change_now`] did.
#[derive(Debug)]
pub enum Applied {
    /// The document is not in memory: load it first.
    NotLoaded,
    /// The operations changed nothing.
    Unchanged,
    /// The change is applied in memory and waits for its commit.
    Queued(Ticket),
}

/// A queued change's place in its group commit; every change of one document in one commit
/// holds the same `commit` number and outcome.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub commit: u64,
    pub doc: DocumentId,
    done: Shared<oneshot::Receiver<Outcome>>,
}

impl Ticket {
    /// Resolves once the commit holding the change has committed (or failed).
    pub async fn wait(self) -> Outcome {
        self.done
            .await
            .map_err(|_| ClientError::Storage("the write was abandoned".into()))?
    }
}

/// One document's share of the commit being gathered.
#[derive(Debug)]
struct DocCommit {
    new: bool,
    changes: Vec<Vec<u8>>,
    tx: oneshot::Sender<Outcome>,
    done: Shared<oneshot::Receiver<Outcome>>,
}

/// The commit being gathered, and whether one is being written.
#[derive(Debug, Default)]
pub(super) struct Gathering {
    /// The number of the commit being gathered.
    number: u64,
    docs: HashMap<DocumentId, DocCommit>,
    /// Documents in the order of their first change (outbox order across documents).
    order: Vec<DocumentId>,
    flushing: bool,
}

impl Gathering {
    fn has(&self, doc: &DocumentId) -> bool {
        self.docs.contains_key(doc)
    }

    fn take(&mut self) -> Vec<(DocumentId, DocCommit)> {
        self.number += 1;
        let mut docs = std::mem::take(&mut self.docs);
        std::mem::take(&mut self.order)
            .into_iter()
            .filter_map(|id| docs.remove(&id).map(|c| (id, c)))
            .collect()
    }
}

/// The rows and outbox entries (made by `entry`) of one document's changes, at most
/// [`ENTRY_CHANGES`] changes and about [`ENTRY_BYTES`] each.
fn write_of(
    doc: DocumentId,
    new: bool,
    changes: Vec<Vec<u8>>,
    entry: impl Fn(OpKind) -> OutboxEntry,
) -> LocalWrite {
    let mut write = LocalWrite {
        doc,
        new,
        rows: Vec::new(),
        entries: Vec::new(),
    };
    let mut group: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    let close = |group: &mut Vec<Vec<u8>>, write: &mut LocalWrite| {
        if group.is_empty() {
            return;
        }
        write.rows.push(group.concat());
        write.entries.push(entry(OpKind::DocumentChanges {
            document: doc,
            changes: std::mem::take(group),
        }));
    };
    for change in changes {
        if group.len() == ENTRY_CHANGES || (bytes + change.len() > ENTRY_BYTES && !group.is_empty())
        {
            close(&mut group, &mut write);
            bytes = 0;
        }
        bytes += change.len();
        group.push(change);
    }
    close(&mut group, &mut write);
    write
}

impl Engine {
    /// Queues a local change (and the document's record, if `new`) for the next group commit.
    pub(super) fn queue(&self, doc: DocumentId, change: Option<Vec<u8>>, new: bool) -> Ticket {
        let (ticket, start) = {
            let mut state = self.state();
            let gathering = &mut state.commit;
            let number = gathering.number;
            if !gathering.has(&doc) {
                let (tx, rx) = oneshot::channel();
                gathering.order.push(doc);
                gathering.docs.insert(
                    doc,
                    DocCommit {
                        new: false,
                        changes: Vec::new(),
                        tx,
                        done: rx.shared(),
                    },
                );
            }
            let entry = gathering.docs.get_mut(&doc).expect("just inserted");
            entry.new |= new;
            entry.changes.extend(change);
            let ticket = Ticket {
                commit: number,
                doc,
                done: entry.done.clone(),
            };
            (ticket, !std::mem::replace(&mut gathering.flushing, true))
        };
        if start {
            // Runs after the current task: every change made until then shares one commit.
            let engine = self.clone();
            wasm_bindgen_futures::spawn_local(async move { engine.flush().await });
        }
        ticket
    }

    async fn flush(&self) {
        loop {
            let batch = self.state().commit.take();
            if batch.is_empty() {
                self.state().commit.flushing = false;
                return;
            }
            let mut writes = Vec::with_capacity(batch.len());
            let mut waiters = Vec::with_capacity(batch.len());
            for (doc, c) in batch {
                writes.push(write_of(doc, c.new, c.changes, new_entry));
                waiters.push(c.tx);
            }
            match storage::direct::write_local(self.direct(), &writes, now()).await {
                Ok(()) => {
                    for w in writes.iter().filter(|w| !w.rows.is_empty()) {
                        let bytes = w.rows.iter().map(Vec::len).sum();
                        let _ = self.with_doc(&w.doc, |d| d.stored(w.rows.len(), bytes));
                    }
                    // Compaction first, while the writer that waits for this commit has
                    // made no change on top of it: the document in memory is then exactly
                    // what is durable and is saved as it is (once the writer resumes, its
                    // next change is in memory, and the stored form has to be loaded).
                    for w in &writes {
                        let _ = self.maybe_compact(&w.doc).await;
                    }
                    waiters.into_iter().for_each(|w| {
                        let _ = w.send(Ok(()));
                    });
                }
                Err(e) => {
                    // Nothing of the commit is stored: forget the in-memory state of its
                    // documents (reloaded from storage on next use) and fail every change made
                    // on top of them, so memory and storage agree again.
                    let later = {
                        let mut state = self.state();
                        let mut later = Vec::new();
                        for w in &writes {
                            state.docs.remove(&w.doc);
                            if let Some(c) = state.commit.docs.remove(&w.doc) {
                                later.push(c.tx);
                            }
                        }
                        let gathering = &mut state.commit;
                        let docs = &gathering.docs;
                        gathering.order.retain(|id| docs.contains_key(id));
                        later
                    };
                    waiters.into_iter().chain(later).for_each(|w| {
                        let _ = w.send(Err(e.clone()));
                    });
                }
            }
        }
    }

    /// Folds `id`'s change rows into a snapshot when they have grown as large as it (so the
    /// work stays proportional to what is written). The snapshot holds only what is durable:
    /// the document in memory when no change of it waits for a commit, else the stored
    /// snapshot and rows, loaded apart (declining instead made a busy document try again
    /// after every commit).
    pub(crate) async fn maybe_compact(&self, id: &DocumentId) -> Result<(), ClientError> {
        if !self.with_doc(id, |d| d.compaction_due()).unwrap_or(false) {
            return Ok(());
        }
        let engine = self.clone();
        storage::compact(self.db(), id, now(), move |snapshot, rows| {
            let waiting = engine.state().commit.has(id);
            engine.with_doc(id, |d| {
                if waiting {
                    let snapshot = snapshot.map(|a| a.to_vec());
                    let saved = Document::load(*id, snapshot.as_deref(), rows)?.save();
                    d.compacted_to(saved.len());
                    Ok(saved)
                } else {
                    d.apply_rows(rows)?;
                    Ok(d.compacted())
                }
            })?
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry without the browser's clock and randomness (this test runs natively).
    fn entry(kind: OpKind) -> OutboxEntry {
        OutboxEntry {
            id: cairn_core::OpId::from_bytes([1; 16]),
            seq: 0,
            kind,
            attempts: 0,
            next_attempt_at: 0,
            status: cairn_core::outbox::OpStatus::Pending,
            created_at: 0,
            last_error: None,
        }
    }

    #[test]
    fn changes_are_grouped_into_entries_of_bounded_size() {
        let doc = DocumentId::from_random_bytes([7; 16]);
        let write = write_of(doc, true, vec![vec![1u8; 10]; 2_500], entry);
        assert!(write.new);
        let counts: Vec<usize> = write
            .entries
            .iter()
            .map(|e| e.kind.change_count())
            .collect();
        assert_eq!(counts, vec![1_000, 1_000, 500]);
        assert_eq!(
            write.rows.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![10_000, 10_000, 5_000]
        );

        let big = write_of(doc, false, vec![vec![0u8; 600 << 10]; 3], entry);
        assert_eq!(
            big.entries.len(),
            3,
            "about a MiB each, one change at least"
        );
        assert!(write_of(doc, true, Vec::new(), entry).entries.is_empty());
    }
}
