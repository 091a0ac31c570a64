//! Cairn's browser driver, compiled to WebAssembly: Automerge documents stored in IndexedDB
//! with an outbox of local operations, synced with a Cairn server.
//!
//! [`Engine`] is the Rust API (also what the wasm-bindgen tests use); [`facade`] is the thin
//! `#[wasm_bindgen]` layer the npm package in `pkg/` wraps, which adds transport (WebSocket,
//! timers), tabs and events. Works in a window and in workers (IndexedDB and `fetch` come from
//! the global scope). The protocol and the outbox rules live in `cairn-core`.

mod doc;
mod engine;
mod error;
pub mod facade;
mod hash;
mod net;
mod remote;
mod storage;

pub use doc::{Document, LocalChange, Op, Seg, parse_ops};
pub use engine::{Engine, FileOp, Handled, PutOptions};
pub use error::ClientError;
pub use facade::FileImporter;
pub use remote::Remote;
pub use storage::files::FileEntry;
pub use storage::{LOCAL_WRITE_TRANSACTIONS, database_name, delete as delete_database};
