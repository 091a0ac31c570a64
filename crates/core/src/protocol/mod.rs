//! The versioned binary wire protocol between the SDK and the server, the same frames over
//! HTTP (`POST /v1/sync`) and WebSocket (`/v1/ws`).
//!
//! ```text
//! frame        = version:u8 kind:u8 body
//! SyncRequest  (1) = request:varint docs:list<DocRequest>
//!   DocRequest     = document:[16] heads:list<[32]> entries:list<Entry>
//!   Entry          = op:[16] changes:list<bytes>
//! SyncResponse (2) = request:varint docs:list<DocResponse>
//!   DocResponse    = document:[16] acked:list<[16]> heads:list<[32]> data:bytes
//! Subscribe    (3) = docs:list<(document:[16] heads:list<[32]>)>
//! Unsubscribe  (4) = docs:list<[16]>
//! Changes      (5) = document:[16] heads:list<[32]> data:bytes
//! Error        (6) = request:varint code:str message:str retryable:u8 docs:list<[16]>
//! Auth         (7) = token:str
//! Welcome      (8) = user:str
//! list<T>          = count:varint T×count      bytes/str = len:varint [u8; len]
//! ```
//!
//! `data` is Automerge bytes to feed to `load_incremental`: concatenated changes, or a saved
//! document when the receiver has nothing yet. Varints are canonical LEB128. Every count and
//! length is checked against the bytes actually present before anything is allocated, a frame
//! must be consumed exactly, and another version is rejected with
//! [`DecodeError::UnsupportedVersion`]. Decoding never panics.

mod codec;
mod messages;
#[cfg(test)]
mod tests;

pub use self::codec::DecodeError;
pub use self::messages::{
    DocChanges, DocHeads, DocRequest, DocResponse, Entry, ErrorMessage, Message, SyncRequest,
    SyncResponse,
};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// The media type of protocol frames over HTTP.
pub const MEDIA_TYPE: &str = "application/vnd.cairn.v1";
