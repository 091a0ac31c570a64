//! Document sync on Automerge's change model: both sides exchange heads and encoded changes;
//! Automerge merges. [`server`] holds what the server does with a request (validate, apply,
//! answer); [`client`] holds what the client does to build one and to read the answer.
//! Both are pure: storage and transport are the drivers' business.
//!
//! Why heads + changes rather than Automerge's bloom-filter sync messages: the outbox needs
//! each operation acknowledged after the server commits it, and a client always knows which
//! heads the server acknowledged, so an exact exchange in one round trip is possible (which is
//! what a Service Worker needs). Automerge's own sync protocol remains the way to talk to
//! automerge-repo peers.

pub mod client;
pub mod server;

use crate::ChangeHash;

impl From<automerge::ChangeHash> for ChangeHash {
    fn from(h: automerge::ChangeHash) -> Self {
        ChangeHash::from(h.0)
    }
}

impl From<ChangeHash> for automerge::ChangeHash {
    fn from(h: ChangeHash) -> Self {
        automerge::ChangeHash(*h.as_bytes())
    }
}

/// Core hashes → Automerge hashes.
pub fn to_automerge(hashes: &[ChangeHash]) -> Vec<automerge::ChangeHash> {
    hashes.iter().copied().map(Into::into).collect()
}

/// Automerge hashes → core hashes.
pub fn from_automerge(hashes: &[automerge::ChangeHash]) -> Vec<ChangeHash> {
    hashes.iter().copied().map(Into::into).collect()
}
