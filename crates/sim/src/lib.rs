//! A deterministic simulator for Cairn's sync protocol: N clients and one server run the
//! real core logic (`cairn_core::outbox`, `sync::client`, `sync::server`, the wire codec)
//! over a simulated network driven by one seeded random number generator. Messages are
//! dropped, duplicated, delayed and reordered; links partition and heal; clients and the
//! server crash and restart from what they had persisted.
//!
//! [`run`] plays one seed and checks, once the network has healed: every replica has the same
//! heads and content for every document, every change a client had persisted before any crash
//! is on the server and on every client, every outbox is empty, and the server stored each
//! change exactly once. The same seed always replays the same run. This is a model checker for
//! the protocol, not the product's storage: the real drivers are tested against PostgreSQL,
//! SQLite and IndexedDB elsewhere.

mod amrepo;
mod check;
mod client;
mod net;
mod rng;
mod server;
mod world;

pub use amrepo::{AmConfig, AmReport, run_amrepo};
pub use check::Violation;
pub use world::{Config, Report, run};
