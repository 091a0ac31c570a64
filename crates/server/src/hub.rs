//! Live fan-out: which WebSocket connections follow which documents, and a mailbox per
//! connection that collects "this document changed" marks.
//!
//! A mark is not the change itself: the connection reads what its client lacks when it gets
//! to it. Marks for one document coalesce, so a slow client costs at most one mark per
//! document it follows, however fast others write. Marks come from this process's commits
//! and, with PostgreSQL, from every replica's commits through LISTEN/NOTIFY.
//!
//! A mark may carry the `seq_no` of the commit behind it: a connection whose cached document
//! already has that row answers without asking the database again. A mark without one (a
//! subscription, an access change, lost notifications) makes it re-check access and reload.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use cairn_core::DocumentId;
use tokio::sync::Notify;

/// Why a document was marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A commit gave it rows up to this `seq_no`; nothing else changed.
    Committed(i64),
    /// Anything may have changed, access included: re-check and reload.
    Unknown,
}

impl Mark {
    fn merge(self, other: Mark) -> Mark {
        match (self, other) {
            (Mark::Committed(a), Mark::Committed(b)) => Mark::Committed(a.max(b)),
            _ => Mark::Unknown,
        }
    }
}

/// One connection's pending marks.
#[derive(Debug, Default)]
pub struct Mailbox {
    dirty: Mutex<BTreeMap<DocumentId, Mark>>,
    notify: Notify,
}

impl Mailbox {
    pub fn mark(&self, document: DocumentId, mark: Mark) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        let merged = match dirty.get(&document) {
            Some(&old) => old.merge(mark),
            None => mark,
        };
        dirty.insert(document, merged);
        drop(dirty);
        self.notify.notify_one();
    }

    /// The marked documents (emptying the mailbox).
    pub fn take(&self) -> BTreeMap<DocumentId, Mark> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// Subscriptions of this process's connections.
#[derive(Debug, Default)]
pub struct Hub {
    followers: Mutex<HashMap<DocumentId, Vec<Weak<Mailbox>>>>,
}

impl Hub {
    pub fn subscribe(&self, document: DocumentId, mailbox: &Arc<Mailbox>) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        let list = followers.entry(document).or_default();
        if !list.iter().any(|w| w.as_ptr() == Arc::as_ptr(mailbox)) {
            list.push(Arc::downgrade(mailbox));
        }
    }

    pub fn unsubscribe(&self, document: &DocumentId, mailbox: &Arc<Mailbox>) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = followers.get_mut(document) {
            list.retain(|w| w.as_ptr() != Arc::as_ptr(mailbox) && w.strong_count() > 0);
            if list.is_empty() {
                followers.remove(document);
            }
        }
    }

    /// Marks `document` changed for everyone following it.
    pub fn publish(&self, document: &DocumentId, mark: Mark) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = followers.get_mut(document) {
            list.retain(|w| match w.upgrade() {
                Some(mailbox) => {
                    mailbox.mark(*document, mark);
                    true
                }
                None => false,
            });
            if list.is_empty() {
                followers.remove(document);
            }
        }
    }

    /// Marks every followed document changed (after notifications may have been missed).
    pub fn publish_all(&self) {
        let documents: Vec<DocumentId> = {
            let followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
            followers.keys().copied().collect()
        };
        documents
            .iter()
            .for_each(|d| self.publish(d, Mark::Unknown));
    }

    /// How many documents have followers (for metrics and tests).
    pub fn followed(&self) -> usize {
        self.followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
