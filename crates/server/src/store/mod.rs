//! Document storage: the `DocumentStore` contract and its two implementations, PostgreSQL
//! (production) and SQLite (the embedded default when no database URL is configured).
//!
//! The contract:
//! - A document is the set of its Automerge changes, one row each. Changes are only inserted,
//!   idempotently by `(document, hash)`; nothing is updated in place, so concurrent writers
//!   cannot lose each other's changes.
//! - Each change row gets a `seq_no`. Writers of one document are serialized by
//!   [`Transaction::lock_document`], so within a document `seq_no` order is commit order and
//!   "changes after `seq_no` n" is a correct incremental read, also across server replicas.
//! - A snapshot is Automerge's saved form of a document's changes up to some `seq_no`, only a
//!   faster way to load; change rows are never removed for it.
//! - Access: a document's owner (who created it) and its members (writers, readers).
//!
//! This module knows nothing about HTTP, and of Automerge only that changes have bytes.

mod files;
mod gc;
pub mod inspect;
mod plans;
mod postgres;
pub mod schema;
mod shared;
mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cairn_core::{ChangeHash, DocumentId};

pub use self::files::{
    ClaimedPin, FileQuery, FileRecord, FileStore, NewFile, PinOutcome, UploadRecord, search_words,
};
pub use self::gc::{DeleteBlocks, GcCounts, GcStore};
pub use self::inspect::{ChangeRecord, ContentRecord, InspectStore, Inspection};
pub use self::plans::{ChangeQuery, change_queries};
pub use self::postgres::PostgresStore;
pub use self::schema::{SchemaStatus, SchemaStore};
pub use self::sqlite::{FILE_NAME as SQLITE_FILE_NAME, SqliteStore};

/// What a user may do with a document.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Writer,
    Reader,
}

impl Role {
    pub fn can_write(self) -> bool {
        matches!(self, Role::Owner | Role::Writer)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "owner" => Ok(Role::Owner),
            "writer" => Ok(Role::Writer),
            "reader" => Ok(Role::Reader),
            other => Err(StoreError::Corrupt(format!("unknown role {other:?}"))),
        }
    }
}

/// One Automerge change, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub hash: ChangeHash,
    pub actor: Vec<u8>,
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
    pub bytes: Vec<u8>,
}

/// A change row read back: its `seq_no` and bytes.
pub type ChangeRow = (i64, Vec<u8>);

/// A compacted snapshot: the saved document of all changes with `seq_no <= upto_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub upto_seq: i64,
    pub bytes: Vec<u8>,
}

/// What loading a document reads: the newest snapshot, then the changes after it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub snapshot: Option<Snapshot>,
    pub changes: Vec<ChangeRow>,
}

/// A user with access to a document, other than its owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user: String,
    pub role: Role,
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
    /// The operation lost a race with another (a garbage collection took what it was
    /// storing); nothing was written, and sending it again succeeds.
    #[error("{0}; send it again")]
    Raced(String),
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

/// Every store of one database: what [`open`] returns.
pub trait Store: DocumentStore + FileStore + SchemaStore + InspectStore {}

impl<T: DocumentStore + FileStore + SchemaStore + InspectStore> Store for T {}

/// Where documents live.
#[async_trait]
pub trait DocumentStore: Send + Sync + 'static {
    /// A short description for logs ("postgres", "sqlite /path").
    fn describe(&self) -> String;

    /// Connections of the pool: open, idle, and the most it opens.
    fn pool_usage(&self) -> (u64, u64, u64);

    /// `user`'s role on `document`; `None` if none, or if the document does not exist.
    async fn role(&self, document: &DocumentId, user: &str) -> Result<Option<Role>, StoreError>;

    /// The newest snapshot and every change after it.
    async fn load(&self, document: &DocumentId) -> Result<Loaded, StoreError>;

    /// Changes with `seq_no > after`, in `seq_no` order.
    async fn changes_since(
        &self,
        document: &DocumentId,
        after: i64,
    ) -> Result<Vec<ChangeRow>, StoreError>;

    /// Starts a write transaction.
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError>;

    /// Stores `snapshot` unless a newer one is already stored.
    async fn save_snapshot(
        &self,
        document: &DocumentId,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError>;

    /// The owner and members of `document`, or `None` if it does not exist.
    async fn members(
        &self,
        document: &DocumentId,
    ) -> Result<Option<(String, Vec<Member>)>, StoreError>;

    /// Gives `user` `role` on `document` (`None` removes them). Owners are not members.
    async fn set_member(
        &self,
        document: &DocumentId,
        user: &str,
        role: Option<Role>,
    ) -> Result<(), StoreError>;

    /// The documents `user` owns or is a member of, with their role, by id.
    async fn documents_for(&self, user: &str) -> Result<Vec<(DocumentId, Role)>, StoreError>;

    /// Tells every replica that `document`'s access list changed (its followers re-check).
    async fn announce(&self, document: &DocumentId) -> Result<(), StoreError>;

    /// How many change rows `document` has.
    async fn change_count(&self, document: &DocumentId) -> Result<u64, StoreError>;

    /// Subscribes to "document changed" notifications from every server replica. Backends
    /// without cross-process notifications return a stream that never yields.
    async fn listen(&self) -> Result<Box<dyn Notifications>, StoreError>;
}

/// A notification from [`Notifications::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Some replica committed changes to this document, up to this `seq_no` if known; an
    /// unknown one also stands for an access change. With the commit's time (Unix ms, the
    /// committing replica's clock) when the notification says, and the committed changes
    /// when it carries them.
    Changed(DocumentId, Option<i64>, Option<i64>, Option<Committed>),
    /// Notifications may have been missed (the connection dropped): treat every document as
    /// possibly changed.
    Lost,
}

/// The changes of one commit to a document, as a notification carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The document's newest row before the commit.
    pub after: i64,
    /// The commit's newest row.
    pub seq: i64,
    /// The encoded changes.
    pub changes: Vec<Vec<u8>>,
}

/// A stream of "document changed" notifications.
#[async_trait]
pub trait Notifications: Send {
    async fn next(&mut self) -> Result<Notice, StoreError>;
}

/// A write transaction; dropped without [`Transaction::commit`], it rolls back.
#[async_trait]
pub trait Transaction: Send {
    /// Creates `document` (owned by `user`) if it does not exist, locks it against other
    /// writers until the transaction ends, and returns `user`'s role on it.
    async fn lock_document(
        &mut self,
        document: &DocumentId,
        user: &str,
    ) -> Result<Option<Role>, StoreError>;

    /// As [`DocumentStore::changes_since`], inside the transaction.
    async fn changes_since(
        &mut self,
        document: &DocumentId,
        after: i64,
    ) -> Result<Vec<ChangeRow>, StoreError>;

    /// As [`DocumentStore::load`], inside the transaction.
    async fn load(&mut self, document: &DocumentId) -> Result<Loaded, StoreError>;

    /// Inserts the changes not already stored; returns the `seq_no`s given to the new rows.
    async fn insert_changes(
        &mut self,
        document: &DocumentId,
        changes: &[StoredChange],
    ) -> Result<Vec<i64>, StoreError>;

    /// Announces, on commit, that `document` has rows up to `seq` (to every replica that
    /// listens): rows `changes` (encoded changes) that follow row `after`, the document's
    /// newest before this commit, so a replica whose cache holds `after` can take them without
    /// reading them back (the notification leaves them out when they are too large for it).
    async fn notify(
        &mut self,
        document: &DocumentId,
        after: i64,
        seq: i64,
        changes: &[&[u8]],
    ) -> Result<(), StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Keep retrying to connect at startup (with backoff) for this long.
    pub connect_retry: Duration,
    /// Apply pending migrations when opening (`serve`, `migrate`); the operations commands
    /// open without, and refuse a schema that is not current. Without it, a missing SQLite
    /// file is an error rather than created.
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            connect_retry: Duration::from_secs(30),
            migrate: true,
        }
    }
}

/// Opens the store named by `database_url`, or the embedded SQLite default under `data_dir`
/// when there is none, and brings its schema up to date.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    options: &StoreOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) if url.starts_with("sqlite:") => {
            Ok(Arc::new(SqliteStore::open_url(url, options.migrate).await?))
        }
        Some(url) => Ok(Arc::new(PostgresStore::connect(url, options).await?)),
        None => Ok(Arc::new(
            SqliteStore::open_in(data_dir, options.migrate).await?,
        )),
    }
}

/// Concatenated 32-byte hashes, the stored form of `deps`.
fn encode_deps(deps: &[ChangeHash]) -> Vec<u8> {
    deps.iter().flat_map(|h| *h.as_bytes()).collect()
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt("seq overflows i64".into()))
}

/// A role column (owner/writer/reader or NULL) → [`Role`].
fn role_of(value: Option<String>) -> Result<Option<Role>, StoreError> {
    value.as_deref().map(Role::parse).transpose()
}
