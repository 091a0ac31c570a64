//! automerge-repo's network protocol (version "1"), so that stock automerge-repo peers sync
//! through a Cairn server: [`wire`] reads and writes its CBOR messages, [`Session`] is one
//! connected peer's state. The documents are Cairn's own (the driver loads, checks access to
//! and commits them); this module only speaks the protocol.

mod relay;
mod session;
pub mod wire;

#[cfg(test)]
mod tests;

pub use relay::Seen;
pub use session::{BadChunk, Event, PROTOCOL_VERSION, Refusal, Session, incoming_changes};
pub use wire::{Ephemeral, PeerMetadata};
