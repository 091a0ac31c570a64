//! Document storage: the `DocumentStore` contract and its two implementations, PostgreSQL
//! (production) and SQLite (the embedded default when no database URL is configured).
//!
//! The contract: a document is the set of its Automerge changes. Changes are only inserted,
//! idempotently by hash, inside one transaction that is committed before the call returns.
//! Nothing is ever updated in place, so concurrent writers cannot lose each other's changes.
//! This module knows nothing about HTTP or about Automerge's semantics.

mod postgres;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use cairn_core::{ChangeHash, DocumentId};

pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;

/// One Automerge change, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub hash: ChangeHash,
    pub actor: Vec<u8>,
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
    pub bytes: Vec<u8>,
}

/// A storage failure. Never shown to clients verbatim.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached in time (pool timeout, connection refused).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e)
            }
            e => StoreError::Database(e),
        }
    }
}

/// Where documents live.
#[async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// A short human-readable description for logs ("postgres", "sqlite /path").
    fn describe(&self) -> String;

    /// The encoded bytes of every change stored for `document`, in commit order; empty when
    /// the document is unknown.
    async fn changes(&self, document: &DocumentId) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Stores `changes` for `document`, skipping any already stored, in one transaction that
    /// is committed before this returns. Returns how many were new.
    async fn insert_changes(
        &self,
        document: &DocumentId,
        changes: &[StoredChange],
    ) -> Result<u64, StoreError>;
}

/// Opens the store named by `database_url`, or the embedded SQLite default under `data_dir`
/// when there is none, and brings its schema up to date.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn DocumentStore>, StoreError> {
    match database_url {
        Some(url) if url.starts_with("sqlite:") => Ok(Arc::new(SqliteStore::open_url(url).await?)),
        Some(url) => Ok(Arc::new(PostgresStore::connect(url).await?)),
        None => Ok(Arc::new(SqliteStore::open_in(data_dir).await?)),
    }
}

/// Concatenated 32-byte hashes, the stored form of `deps`.
fn encode_deps(deps: &[ChangeHash]) -> Vec<u8> {
    deps.iter().flat_map(|h| *h.as_bytes()).collect()
}
