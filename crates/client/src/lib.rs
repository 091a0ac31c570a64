//! Cairn's browser driver, compiled to WebAssembly: documents stored in IndexedDB and
//! pushed to / pulled from a Cairn server.
//!
//! [`Repo`] and [`Document`] are the Rust API (also what the wasm-bindgen tests use);
//! [`facade`] is the thin `#[wasm_bindgen]` layer the npm package in `pkg/` wraps. Works in a
//! window and in a worker (IndexedDB and `fetch` are taken from the global scope). The
//! protocol itself lives in `cairn-core`; this crate only carries it out.

mod document;
mod error;
pub mod facade;
mod net;
mod repo;
mod storage;

pub use document::Document;
pub use error::ClientError;
pub use repo::{Remote, Repo};
