//! The automerge-repo side of the server (no HTTP here; `http::automerge` is the endpoint):
//! who this server is to automerge-repo peers, and the relay of their ephemeral messages
//! (presence, cursors) between the peers that have a document open on this replica.
//!
//! Ephemeral messages are not stored and not sent to other replicas: peers of one document
//! connected to different replicas do not see each other's. Documents themselves go through
//! `Documents` like every other write, so they reach every replica and every Cairn client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_core::DocumentId;
use cairn_core::amrepo::{Ephemeral, Seen};
use tokio::sync::mpsc;

/// Ephemeral messages waiting for one connection; more are dropped (they are lossy by nature,
/// and a slow reader must not hold the others up).
pub const RELAY_QUEUE: usize = 256;

/// This server as automerge-repo peers see it, and its relay.
#[derive(Debug)]
pub struct AutomergeHub {
    /// The server's peer id (one per replica).
    pub peer_id: String,
    /// The storage id (one per deployment: every replica on the same database says the same).
    pub storage_id: String,
    next_connection: AtomicU64,
    relay: Mutex<HashMap<DocumentId, DocPeers>>,
}

#[derive(Debug, Default)]
struct DocPeers {
    seen: Seen,
    peers: HashMap<u64, mpsc::Sender<Ephemeral>>,
}

impl AutomergeHub {
    pub fn new(peer_id: String, storage_id: String) -> Self {
        Self {
            peer_id,
            storage_id,
            next_connection: AtomicU64::new(1),
            relay: Mutex::default(),
        }
    }

    /// A new connection's id and the queue its relayed messages arrive in.
    pub fn connection(&self) -> (u64, mpsc::Receiver<Ephemeral>, mpsc::Sender<Ephemeral>) {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        (id, rx, tx)
    }

    fn relay(&self) -> std::sync::MutexGuard<'_, HashMap<DocumentId, DocPeers>> {
        // A panic while holding the lock leaves plain maps behind: keep using them.
        self.relay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connection `id` has `document` open: it receives its ephemeral messages.
    pub fn open(&self, document: DocumentId, id: u64, queue: &mpsc::Sender<Ephemeral>) {
        self.relay()
            .entry(document)
            .or_default()
            .peers
            .insert(id, queue.clone());
    }

    /// Connection `id` closed: it receives nothing more.
    pub fn close(&self, id: u64, documents: impl IntoIterator<Item = DocumentId>) {
        let mut relay = self.relay();
        for document in documents {
            if let Some(doc) = relay.get_mut(&document) {
                doc.peers.remove(&id);
                if doc.peers.is_empty() {
                    relay.remove(&document);
                }
            }
        }
    }

    /// Passes `message` from connection `from` to the other connections that have its
    /// document open, unless it was relayed before (gossip brings messages back).
    pub fn ephemeral(&self, from: u64, message: Ephemeral) {
        let mut relay = self.relay();
        let Some(doc) = relay.get_mut(&message.document) else {
            return;
        };
        if !doc.seen.fresh(&message) {
            return;
        }
        for (&id, queue) in &doc.peers {
            if id != from {
                let _ = queue.try_send(message.clone());
            }
        }
    }
}

/// A storage id for a deployment whose operator set none: derived from where its data is (the
/// database URL without its credentials, or the SQLite file), so every replica of one
/// deployment derives the same.
pub fn derived_storage_id(location: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("cairn-storage:{location}").as_bytes());
    format!("cairn-{}", hex::encode(&digest[..16]))
}

/// `url` without a password or user (`postgres://u:p@host/db` → `postgres://host/db`).
pub fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_do_not_change_the_storage_id() {
        let a = derived_storage_id(&without_credentials(
            "postgres://alice:s3cret@db:5432/cairn",
        ));
        let b = derived_storage_id(&without_credentials("postgres://bob:other@db:5432/cairn"));
        assert_eq!(a, b);
        assert_ne!(
            a,
            derived_storage_id(&without_credentials("postgres://db:5432/other"))
        );
        assert!(a.starts_with("cairn-") && a.len() == 6 + 32);
    }

    #[test]
    fn ephemeral_messages_go_to_the_other_peers_of_the_document_once() {
        let hub = AutomergeHub::new("p".into(), "s".into());
        let document = DocumentId::from_random_bytes([1; 16]);
        let (a, mut a_rx, a_tx) = hub.connection();
        let (b, mut b_rx, b_tx) = hub.connection();
        hub.open(document, a, &a_tx);
        hub.open(document, b, &b_tx);
        let message = Ephemeral {
            sender: "alice".into(),
            document,
            session: "s".into(),
            count: 1,
            data: vec![7],
        };
        hub.ephemeral(a, message.clone());
        hub.ephemeral(b, message.clone()); // gossiped back by b's peer
        assert_eq!(b_rx.try_recv().ok(), Some(message));
        assert!(b_rx.try_recv().is_err() && a_rx.try_recv().is_err());
        hub.close(b, [document]);
        hub.close(a, [document]);
        assert!(hub.relay().is_empty());
    }
}
