//! The properties a healed run must satisfy.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Change, ReadDoc};
use cairn_core::retry::Millis;
use cairn_core::{ChangeHash, DocumentId};

use crate::client::SimClient;
use crate::server::SimServer;

/// A broken property, with the seed that shows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("seed {seed}: the network healed but replicas had not converged at {at} ms")]
    NoConvergence { seed: u64, at: Millis },
    #[error("seed {seed}: client {client} received something the protocol forbids: {detail}")]
    Protocol {
        seed: u64,
        client: usize,
        detail: String,
    },
    #[error("seed {seed}: replicas of {document} diverged: {detail}")]
    Diverged {
        seed: u64,
        document: DocumentId,
        detail: String,
    },
    #[error("seed {seed}: durable change {change} of {document} is missing on the {missing_on}")]
    Lost {
        seed: u64,
        document: DocumentId,
        change: ChangeHash,
        missing_on: String,
    },
    #[error("seed {seed}: the server stored change {change} of {document} twice")]
    Duplicated {
        seed: u64,
        document: DocumentId,
        change: ChangeHash,
    },
    #[error("seed {seed}: client {client}'s outbox still holds {entries} entries")]
    OutboxNotEmpty {
        seed: u64,
        client: usize,
        entries: usize,
    },
}

pub(crate) fn outcome(
    seed: u64,
    server: &SimServer,
    clients: &mut [SimClient],
    documents: &[DocumentId],
    durable: &BTreeMap<DocumentId, BTreeSet<ChangeHash>>,
) -> Result<(), Violation> {
    for (i, c) in clients.iter().enumerate() {
        if !c.outbox.is_empty() {
            return Err(Violation::OutboxNotEmpty {
                seed,
                client: i,
                entries: c.outbox.len(),
            });
        }
    }
    for document in documents {
        let stored = server.store.get(document).cloned().unwrap_or_default();
        let mut hashes = BTreeSet::new();
        for bytes in stored {
            let change: ChangeHash = Change::from_bytes(bytes)
                .expect("stored changes decode")
                .hash()
                .into();
            if !hashes.insert(change) {
                return Err(Violation::Duplicated {
                    seed,
                    document: *document,
                    change,
                });
            }
        }
        for change in durable.get(document).into_iter().flatten() {
            if !hashes.contains(change) {
                let missing_on = "server".to_owned();
                return Err(Violation::Lost {
                    seed,
                    document: *document,
                    change: *change,
                    missing_on,
                });
            }
        }
        let reference = server.load(document);
        let expected = reference.hydrate(None);
        for (i, client) in clients.iter_mut().enumerate() {
            let doc = client
                .docs
                .get_mut(document)
                .expect("every client has every document");
            if doc.get_heads() != reference.get_heads() {
                let detail = format!("client {i} heads differ from the server's");
                return Err(Violation::Diverged {
                    seed,
                    document: *document,
                    detail,
                });
            }
            if doc.hydrate(automerge::ROOT, None).ok() != Some(expected.clone()) {
                let detail = format!("client {i} content differs from the server's");
                return Err(Violation::Diverged {
                    seed,
                    document: *document,
                    detail,
                });
            }
        }
    }
    Ok(())
}
