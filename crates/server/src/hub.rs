//! Live fan-out: which WebSocket connections follow which documents, and a mailbox per
//! connection that collects "this document changed" marks.
//!
//! A mark is not the change itself: the connection reads what its client lacks when it gets
//! to it. Marks for one document coalesce, so a slow client costs at most one mark per
//! document it follows, however fast others write. Marks come from this process's commits
//! and, with PostgreSQL, from every replica's commits through LISTEN/NOTIFY.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use cairn_core::DocumentId;
use tokio::sync::Notify;

/// One connection's pending marks.
#[derive(Debug, Default)]
pub struct Mailbox {
    dirty: Mutex<BTreeSet<DocumentId>>,
    notify: Notify,
}

impl Mailbox {
    pub fn mark(&self, document: DocumentId) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(document);
        self.notify.notify_one();
    }

    /// Takes every pending mark.
    pub fn take(&self) -> BTreeSet<DocumentId> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Resolves once there may be marks to take.
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
    pub fn publish(&self, document: &DocumentId) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = followers.get_mut(document) {
            list.retain(|w| match w.upgrade() {
                Some(mailbox) => {
                    mailbox.mark(*document);
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
        documents.iter().for_each(|d| self.publish(d));
    }

    /// How many documents have followers (for metrics and tests).
    pub fn followed(&self) -> usize {
        self.followers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}
