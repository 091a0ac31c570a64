//! The SQLite document store: the embedded default, one file under the data directory
//! (schema: `migrations/sqlite`). Queries common to both backends are in `shared`. SQLite has
//! one writer at a time, which is the per-document write lock the contract asks for; there is
//! no cross-process notification (one process).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::DocumentId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction as SqlxTransaction};

use super::files::{file_store, select_files};
use super::gc::gc_store;
use super::inspect::inspect_store;
use super::schema::schema_store;
use super::shared::{ROLE, document_store, transaction};
use super::{
    Notice, Notifications, Role, Snapshot, StoreError, StoredChange, Transaction, encode_deps,
    role_of, seq_i64,
};

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "cairn.sqlite3";

/// Documents in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    location: String,
}

impl SqliteStore {
    /// Opens `<data_dir>/cairn.sqlite3`; `migrate`: create it if needed and bring its
    /// schema up to date (otherwise a missing file is an error).
    pub async fn open_in(data_dir: &Path, migrate: bool) -> Result<Self, StoreError> {
        if migrate {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        }
        let path = data_dir.join(FILE_NAME);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(migrate);
        Self::open(options, path.display().to_string(), migrate).await
    }

    /// Opens a `sqlite:` URL (as [`Self::open_in`]).
    pub async fn open_url(url: &str, migrate: bool) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(migrate);
        Self::open(options, url.to_owned(), migrate).await
    }

    /// Opens a database file read-only, as it is (no migrations, no journal changes): a
    /// backup being verified.
    pub async fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            location: path.display().to_string(),
        })
    }

    async fn open(
        options: SqliteConnectOptions,
        location: String,
        migrate: bool,
    ) -> Result<Self, StoreError> {
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
        if migrate {
            super::schema::SQLITE.run(&pool).await?;
        }
        Ok(Self { pool, location })
    }

    /// The connection pool (for the operations commands, which copy whole tables).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

file_store!(SqliteStore, SQLITE_SEARCH, sqlite_search_query);
// A deferred transaction: its first read fixes the snapshot (WAL), writers go on meanwhile.
inspect_store!(SqliteStore, SqliteInspection, Sqlite, "BEGIN");
schema_store!(
    SqliteStore,
    super::schema::SQLITE,
    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')"
);
// One writer at a time: the collection's write transaction already excludes new references.
gc_store!(
    SqliteStore,
    SQLITE_CLAIM_BLOCKS,
    "SELECT 1 FROM file_contents WHERE cid = $1"
);

/// Claims: `$1` content, `$2` a JSON array of digests, `$3` the time.
const SQLITE_CLAIM_BLOCKS: &str = "INSERT INTO content_blocks (content_cid, digest, claimed_ms)
     SELECT $1, value, $3 FROM json_each($2) WHERE true
     ON CONFLICT (content_cid, digest) DO UPDATE SET claimed_ms = excluded.claimed_ms";

impl SqliteStore {
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// SQLite has one writer at a time: a collection deleting blocks and an upload claiming
    /// them never overlap, whichever lock is asked for.
    async fn begin_gc(
        &self,
        _exclusive: bool,
    ) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StoreError> {
        self.begin_write().await
    }
}

/// `$1` owner, `$2` the query from [`sqlite_search_query`], `$3` type prefix pattern, `$4`
/// limit.
const SQLITE_SEARCH: &str = select_files!(
    "FROM files_fts s
     JOIN files f ON f.owner = s.owner AND f.cid = s.cid
     JOIN file_contents c ON c.cid = f.cid
     LEFT JOIN pins p ON p.cid = f.cid
     WHERE s.owner = $1 AND files_fts MATCH $2
       AND ($3 IS NULL OR f.content_type LIKE $3 ESCAPE '\\')
     ORDER BY s.rank, f.created_ms DESC, f.cid
     LIMIT $4"
);

/// Every word as a prefix of a word of `search_text`: `search_text : "report"* AND ...`
/// (words are letters and digits only, so the quoting cannot be escaped).
fn sqlite_search_query(words: &[String]) -> String {
    let terms: Vec<String> = words
        .iter()
        .map(|w| format!("search_text : \"{w}\"*"))
        .collect();
    terms.join(" AND ")
}

document_store!(SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.location)
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        // IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        // instead of one failing with SQLITE_BUSY when a read lock cannot be upgraded.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTransaction { tx }))
    }

    async fn save_snapshot(&self, document: &DocumentId, snapshot: &Snapshot) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (document_id, upto_seq_no, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (document_id) DO UPDATE
               SET upto_seq_no = excluded.upto_seq_no, bytes = excluded.bytes,
                   created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
               WHERE snapshots.upto_seq_no < excluded.upto_seq_no",
        )
        .bind(document.to_string())
        .bind(snapshot.upto_seq)
        .bind(&snapshot.bytes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn listen(&self) -> Result<Box<dyn Notifications>, StoreError> {
        Ok(Box::new(NoNotifications))
    }

    async fn announce(&self, _document: &DocumentId) -> Result<(), StoreError> {
        Ok(()) // one process: the hub already knows
    }
});

/// One process, no other replicas to hear from.
struct NoNotifications;

#[async_trait]
impl Notifications for NoNotifications {
    async fn next(&mut self) -> Result<Notice, StoreError> {
        std::future::pending().await
    }
}

struct SqliteTransaction {
    tx: SqlxTransaction<'static, Sqlite>,
}

transaction!(SqliteTransaction {
    async fn lock_document(&mut self, document: &DocumentId, user: &str) -> Result<Option<Role>, StoreError> {
        // The IMMEDIATE transaction already holds the database's write lock.
        sqlx::query("INSERT INTO documents (id, owner) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(document.to_string())
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        let row: Option<(Option<String>,)> = sqlx::query_as(ROLE)
            .bind(document.to_string())
            .bind(user)
            .fetch_optional(&mut *self.tx)
            .await?;
        role_of(row.and_then(|(r,)| r))
    }

    async fn insert_changes(&mut self, document: &DocumentId, changes: &[StoredChange]) -> Result<Vec<i64>, StoreError> {
        let id = document.to_string();
        let mut inserted = Vec::new();
        for c in changes {
            let row: Option<(i64,)> = sqlx::query_as(
                "INSERT INTO changes (document_id, hash, actor, seq, deps, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (document_id, hash) DO NOTHING
                 RETURNING seq_no",
            )
            .bind(&id)
            .bind(c.hash.as_bytes().as_slice())
            .bind(c.actor.as_slice())
            .bind(seq_i64(c.seq)?)
            .bind(encode_deps(&c.deps))
            .bind(c.bytes.as_slice())
            .fetch_optional(&mut *self.tx)
            .await?;
            inserted.extend(row.map(|(s,)| s));
        }
        Ok(inserted)
    }

    async fn notify(
        &mut self,
        _document: &DocumentId,
        _after: i64,
        _seq: i64,
        _changes: &[&[u8]],
    ) -> Result<(), StoreError> {
        Ok(()) // one process: the hub already knows
    }
});
