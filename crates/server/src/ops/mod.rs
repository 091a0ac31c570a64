//! Operating a deployment as a whole: `cairn backup` ([`backup`]), `cairn restore`
//! ([`restore`]) and `cairn verify` ([`verify`]). They open the same database and data
//! directory as `cairn serve` (the same flags), run beside a serving server, and never
//! migrate: a schema that is not current is refused with a message saying why.
//!
//! Not the request path: nothing here is used by `serve`, except that garbage collection
//! honours a running backup's lease (see `store::gc`).

pub mod backup;
pub mod blocks;
mod constraints;
pub mod manifest;
pub mod pgcopy;
pub mod progress;
pub mod restore;
pub(crate) mod rows;
pub mod tables;
pub mod verify;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::config::StorageArgs;
use crate::store::{PostgresStore, SQLITE_FILE_NAME, SqliteStore, Store, StoreError};

/// Why an operation could not run (problems it *found* are in its report).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Copy(#[from] pgcopy::CopyError),
    /// The operation refuses to go on; nothing was written.
    #[error("{0}")]
    Refused(String),
    /// Stored data is not what it must be.
    #[error("{0}")]
    Invalid(String),
}

impl OpsError {
    /// `map_err(OpsError::io("what"))`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OpsError {
        let what = what.into();
        move |source| OpsError::Io { what, source }
    }
}

impl From<sqlx::Error> for OpsError {
    fn from(e: sqlx::Error) -> Self {
        OpsError::Store(e.into())
    }
}

/// A deployment's database, opened for an operation.
#[derive(Debug)]
pub enum Db {
    Postgres(PostgresStore),
    /// The file too: backups copy it whole.
    Sqlite {
        store: SqliteStore,
        path: PathBuf,
    },
}

impl Db {
    /// Opens the database `storage` names, without migrating: a missing embedded database
    /// is an error.
    pub async fn open(storage: &StorageArgs) -> Result<Self, OpsError> {
        let options = storage.options(false);
        match storage.database_url.as_deref() {
            Some(url) if url.starts_with("sqlite:") => {
                let path = sqlite_path(url)?;
                Self::open_sqlite(&path).await
            }
            Some(url) => Ok(Db::Postgres(PostgresStore::connect(url, &options).await?)),
            None => Self::open_sqlite(&storage.data_dir.join(SQLITE_FILE_NAME)).await,
        }
    }

    async fn open_sqlite(path: &Path) -> Result<Self, OpsError> {
        if !path.is_file() {
            return Err(OpsError::Refused(format!(
                "no database at {} (is --data-dir or --database-url right?)",
                path.display()
            )));
        }
        let url = format!("sqlite://{}", path.display());
        Ok(Db::Sqlite {
            store: SqliteStore::open_url(&url, false).await?,
            path: path.to_owned(),
        })
    }

    pub fn store(&self) -> &dyn Store {
        match self {
            Db::Postgres(store) => store,
            Db::Sqlite { store, .. } => store,
        }
    }

    /// The store, shareable with tasks.
    pub fn shared(&self) -> std::sync::Arc<dyn Store> {
        match self {
            Db::Postgres(store) => std::sync::Arc::new(store.clone()),
            Db::Sqlite { store, .. } => std::sync::Arc::new(store.clone()),
        }
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite { .. } => "sqlite",
        }
    }

    /// Refuses a schema that is not exactly this binary's.
    pub async fn require_current_schema(&self) -> Result<(), OpsError> {
        let status = self.store().schema_status().await?;
        match status.problem() {
            None => Ok(()),
            Some(problem) => Err(OpsError::Refused(problem)),
        }
    }
}

/// The file a `sqlite:` URL names.
pub fn sqlite_path(url: &str) -> Result<PathBuf, OpsError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| OpsError::Refused(format!("invalid SQLite URL {url:?}: {e}")))?;
    Ok(options.get_filename().to_path_buf())
}

/// Now, as RFC 3339 UTC (for manifests and reports).
pub fn now_rfc3339() -> String {
    let micros = crate::clock::now_ms().saturating_mul(1000);
    tables::format_time(micros)
}

/// This host and process, for leases and manifests.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}
