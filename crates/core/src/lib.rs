//! Cairn's shared core: identifiers and the sync wire protocol, used by the browser SDK
//! (`cairn-client`) and the sync server (`cairn-server`).
//!
//! The core is sans-IO and deterministic: it never touches a socket, a database, a clock or
//! a random number generator. Randomness comes in as arguments (see
//! [`DocumentId::from_random_bytes`]) and effects go out as data (encoded [`Message`]s).
//! It is not a storage engine or a transport: the drivers in the client and the server do that.

pub mod amrepo;
mod change_hash;
pub mod content;
mod document_id;
mod hex;
mod op_id;
pub mod outbox;
pub mod protocol;
pub mod retry;
pub mod sync;
mod varint;

pub use change_hash::{ChangeHash, ChangeHashError};
pub use document_id::{DocumentId, DocumentIdError};
pub use op_id::{OpId, OpIdError};
pub use protocol::{DecodeError, Message};
