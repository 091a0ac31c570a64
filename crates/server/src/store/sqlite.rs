//! The SQLite document store: the embedded default, one file under the data directory.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::DocumentId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{DocumentStore, StoreError, StoredChange, encode_deps};

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "cairn.sqlite3";

/// Documents in a SQLite file (schema: `migrations/sqlite`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    location: String,
}

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/cairn.sqlite3`.
    pub async fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        let path = data_dir.join(FILE_NAME);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        Self::open(options, path.display().to_string()).await
    }

    /// Opens a `sqlite:` URL.
    pub async fn open_url(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        Self::open(options, url.to_owned()).await
    }

    async fn open(options: SqliteConnectOptions, location: String) -> Result<Self, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we acknowledge it.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool, location })
    }
}

#[async_trait]
impl DocumentStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.location)
    }

    async fn changes(&self, document: &DocumentId) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("SELECT bytes FROM changes WHERE document_id = ?1 ORDER BY seq_no")
                .bind(document.to_string())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(b,)| b).collect())
    }

    async fn insert_changes(
        &self,
        document: &DocumentId,
        changes: &[StoredChange],
    ) -> Result<u64, StoreError> {
        let id = document.to_string();
        // IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        // instead of one failing with SQLITE_BUSY when a read lock cannot be upgraded.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT INTO documents (id) VALUES (?1) ON CONFLICT DO NOTHING")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        let mut inserted = 0;
        for c in changes {
            let seq = i64::try_from(c.seq)
                .map_err(|_| StoreError::Corrupt("seq overflows i64".into()))?;
            inserted += sqlx::query(
                "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (document_id, hash) DO NOTHING",
            )
            .bind(&id)
            .bind(c.hash.as_bytes().as_slice())
            .bind(c.actor.as_slice())
            .bind(seq)
            .bind(encode_deps(&c.deps))
            .bind(c.bytes.as_slice())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }
}
