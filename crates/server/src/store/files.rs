//! File metadata: which file contents exist (by root CID) and who references each, under the
//! same contract in both backends. The bytes themselves are in the blockstore
//! ([`crate::blocks`]); a content row is only written after all of its blocks are durable
//! there, so a row always means "downloadable".
//!
//! The SQL is the same in PostgreSQL and SQLite, so one macro implements [`FileStore`] for
//! both.

use async_trait::async_trait;

use super::StoreError;
use super::gc::GcStore;

/// One user's file, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FileRecord {
    pub cid: String,
    pub name: String,
    pub content_type: String,
    /// File bytes.
    pub size: i64,
    /// Bytes of every block of the file's DAG.
    pub dag_size: i64,
    /// When this user first stored it (Unix milliseconds).
    pub created_ms: i64,
    /// The JSON object the uploader attached (`{}` when none).
    pub metadata: String,
    /// `none` (no pinning backend), `queued`, `pinning`, `pinned` or `failed`.
    pub pin_status: String,
    /// Pin attempts so far.
    pub pin_attempts: i64,
    /// Why the last pin attempt failed, if it did.
    pub pin_error: Option<String>,
    /// Each backend's state after the last attempt: a JSON array of `PinCopy`
    /// (`pinning::set`), or `None` before any.
    pub pin_copies: Option<String>,
}

/// A resumable upload session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRecord {
    pub id: String,
    pub owner: String,
    pub cid: String,
    pub size: i64,
    /// Durable bytes received so far.
    pub received: i64,
    pub name: String,
    pub content_type: String,
    pub metadata: String,
}

/// A pin the worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedPin {
    pub cid: String,
    pub size: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// How a pin attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    Pinned,
    /// Try again at `next_attempt_ms`.
    Retry {
        next_attempt_ms: i64,
        error: String,
    },
    /// Some backends hold it, fewer than wanted: it stays `pinning` (leased to nobody) and is
    /// tried again at `next_attempt_ms`.
    Partial {
        next_attempt_ms: i64,
        error: String,
    },
    /// The backend refused it for good.
    Failed {
        error: String,
    },
}

/// A file to record for `owner`.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub owner: &'a str,
    pub cid: &'a str,
    pub name: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub dag_size: i64,
    pub now_ms: i64,
    /// A JSON object.
    pub metadata: &'a str,
}

/// A page of an owner's files, newest first.
#[derive(Debug, Clone, Default)]
pub struct FileQuery {
    /// Only files whose type starts with this (e.g. `image/`).
    pub type_prefix: Option<String>,
    /// Only files older than this `(created_ms, cid)` (the previous page's last file).
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// Where file metadata lives (and what garbage collection keeps, [`GcStore`]).
#[async_trait]
pub trait FileStore: GcStore + Send + Sync + 'static {
    /// Records the content (if new) and `owner`'s reference to it (name and type replaced if
    /// they had it already). Returns the record and whether the content was new. The content
    /// must have claimed its blocks ([`GcStore::claim_blocks`]); if a collection took them
    /// meanwhile, nothing is recorded and the error is [`StoreError::Raced`].
    async fn add_file(&self, file: &NewFile<'_>) -> Result<(FileRecord, bool), StoreError>;

    /// `owner`'s file `cid`, if they have it.
    async fn file(&self, owner: &str, cid: &str) -> Result<Option<FileRecord>, StoreError>;

    /// File `cid` as `user` may read it: their own, or one attached to a document they may
    /// read (then as its attacher named it).
    async fn readable_file(&self, user: &str, cid: &str) -> Result<Option<FileRecord>, StoreError>;

    /// Attaches `user`'s file `cid` to `document` (access is checked by the caller).
    async fn attach_file(
        &self,
        document: &str,
        cid: &str,
        user: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Detaches file `cid` from `document`; returns whether it was attached.
    async fn detach_file(&self, document: &str, cid: &str) -> Result<bool, StoreError>;

    /// The files attached to `document`, oldest attachment first.
    async fn document_files(&self, document: &str) -> Result<Vec<FileRecord>, StoreError>;

    /// Whether content `cid` is stored (by anyone): its size and DAG size.
    async fn content(&self, cid: &str) -> Result<Option<(i64, i64)>, StoreError>;

    /// A page of `owner`'s files.
    async fn files(&self, owner: &str, query: &FileQuery) -> Result<Vec<FileRecord>, StoreError>;

    /// `owner`'s files whose name, type or metadata contain words starting with each of
    /// `words` (see [`search_words`]), best match first.
    async fn search(
        &self,
        owner: &str,
        words: &[String],
        type_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FileRecord>, StoreError>;

    /// Starts an upload session (`received` 0).
    async fn create_upload(&self, upload: &UploadRecord, now_ms: i64) -> Result<(), StoreError>;

    /// `owner`'s upload session `id`.
    async fn upload(&self, owner: &str, id: &str) -> Result<Option<UploadRecord>, StoreError>;

    /// Records that session `id` has `to` durable bytes, if it still has `from`; whether it had.
    async fn set_upload_received(
        &self,
        id: &str,
        from: i64,
        to: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Ends session `id`.
    async fn delete_upload(&self, id: &str) -> Result<(), StoreError>;

    /// Queues content `cid` for pinning (no-op if it has a pin row); `None` queues every
    /// content without one (at startup, when a backend is configured). Returns rows added.
    async fn enqueue_pins(&self, cid: Option<&str>, now_ms: i64) -> Result<u64, StoreError>;

    /// Claims up to `limit` pins that are due (queued and due, or pinning with an expired
    /// lease) for `lease_ms`.
    async fn claim_pins(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedPin>, StoreError>;

    /// Records how the attempt on a claimed pin ended, and what each backend holds
    /// (`copies`, a JSON array; `None` keeps what was recorded).
    async fn finish_pin(
        &self,
        cid: &str,
        outcome: &PinOutcome,
        copies: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// How many pins are in each status.
    async fn pin_counts(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Gives back claimed pins whose attempt did not finish (the worker is shutting down):
    /// queued again and due at `now_ms`, so a worker on any replica takes them at once.
    async fn release_pins(&self, cids: &[String], now_ms: i64) -> Result<(), StoreError>;

    /// Removes `owner`'s reference (and their attachments of it to documents); returns
    /// whether they had one, and how many references the content has left (0: it becomes a
    /// candidate for garbage collection).
    async fn delete_file(
        &self,
        owner: &str,
        cid: &str,
        now_ms: i64,
    ) -> Result<(bool, i64), StoreError>;
}

/// A query for [`FileRecord`]s: their columns, then `$from` (which joins `files f`,
/// `file_contents c` and `pins p`).
macro_rules! select_files {
    ($from:literal) => {
        concat!(
            "SELECT f.cid, f.name, f.content_type, c.size, c.dag_size, f.created_ms, f.metadata,
                COALESCE(p.status, 'none') AS pin_status,
                CAST(COALESCE(p.attempts, 0) AS BIGINT) AS pin_attempts,
                p.last_error AS pin_error, p.copies AS pin_copies ",
            $from
        )
    };
}
pub(super) use select_files;

pub(super) const ADD_CONTENT: &str = "INSERT INTO file_contents (cid, size, dag_size, created_ms)
     VALUES ($1, $2, $3, $4) ON CONFLICT (cid) DO NOTHING";
pub(super) const ADD_FILE: &str = "INSERT INTO files
         (owner, cid, name, content_type, created_ms, metadata, search_text)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (owner, cid) DO UPDATE SET name = excluded.name,
         content_type = excluded.content_type, metadata = excluded.metadata,
         search_text = excluded.search_text";
pub(super) const FILE: &str = select_files!(
    "FROM files f JOIN file_contents c ON c.cid = f.cid
     LEFT JOIN pins p ON p.cid = f.cid
     WHERE f.owner = $1 AND f.cid = $2"
);
pub(super) const READABLE_FILE: &str = select_files!(
    "FROM files f JOIN file_contents c ON c.cid = f.cid
     LEFT JOIN pins p ON p.cid = f.cid
     WHERE f.cid = $2 AND (f.owner = $1 OR EXISTS (
         SELECT 1 FROM file_refs r JOIN documents d ON d.id = r.document_id
         LEFT JOIN document_members m ON m.document_id = d.id AND m.user_id = $1
         WHERE r.cid = f.cid AND r.added_by = f.owner
           AND (d.owner = $1 OR m.user_id IS NOT NULL)))
     ORDER BY f.owner = $1 DESC
     LIMIT 1"
);
pub(super) const ATTACH_FILE: &str = "INSERT INTO file_refs (document_id, cid, added_by, added_ms)
     VALUES ($1, $2, $3, $4) ON CONFLICT (document_id, cid) DO NOTHING";
pub(super) const DETACH_FILE: &str = "DELETE FROM file_refs WHERE document_id = $1 AND cid = $2";
pub(super) const DOCUMENT_FILES: &str = select_files!(
    "FROM file_refs r
     JOIN files f ON f.owner = r.added_by AND f.cid = r.cid
     JOIN file_contents c ON c.cid = f.cid
     LEFT JOIN pins p ON p.cid = f.cid
     WHERE r.document_id = $1
     ORDER BY r.added_ms, r.cid"
);
pub(super) const CONTENT: &str = "SELECT size, dag_size FROM file_contents WHERE cid = $1";
pub(super) const FILES: &str = select_files!(
    "FROM files f JOIN file_contents c ON c.cid = f.cid
     LEFT JOIN pins p ON p.cid = f.cid
     WHERE f.owner = $1
       AND ($2 IS NULL OR f.content_type LIKE $2 ESCAPE '\\')
       AND ($3 IS NULL OR f.created_ms < $3 OR (f.created_ms = $3 AND f.cid < $4))
     ORDER BY f.created_ms DESC, f.cid DESC
     LIMIT $5"
);
pub(super) const CREATE_UPLOAD: &str = "INSERT INTO uploads
         (id, owner, cid, size, received, name, content_type, metadata, created_ms, updated_ms)
     VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $8)";
pub(super) const UPLOAD: &str =
    "SELECT id, owner, cid, size, received, name, content_type, metadata
     FROM uploads WHERE owner = $1 AND id = $2";
pub(super) const SET_UPLOAD_RECEIVED: &str =
    "UPDATE uploads SET received = $3, updated_ms = $4 WHERE id = $1 AND received = $2";
pub(super) const DELETE_UPLOAD: &str = "DELETE FROM uploads WHERE id = $1";
pub(super) const ENQUEUE_PIN: &str = "INSERT INTO pins (cid, status, next_attempt_ms, updated_ms)
     VALUES ($1, 'queued', $2, $2) ON CONFLICT (cid) DO NOTHING";
pub(super) const ENQUEUE_ALL_PINS: &str =
    "INSERT INTO pins (cid, status, next_attempt_ms, updated_ms)
     SELECT c.cid, 'queued', $1, $1 FROM file_contents c
     WHERE NOT EXISTS (SELECT 1 FROM pins p WHERE p.cid = c.cid)";
/// Two replicas may claim the same row in a race; pinning twice is harmless.
pub(super) const CLAIM_PINS: &str = "UPDATE pins
     SET status = 'pinning', lease_until_ms = $1 + $2, attempts = attempts + 1, updated_ms = $1
     WHERE cid IN (
         SELECT cid FROM pins
         WHERE (status = 'queued' AND next_attempt_ms <= $1)
            OR (status = 'pinning' AND lease_until_ms <= $1)
         ORDER BY next_attempt_ms LIMIT $3)
     RETURNING cid, CAST(attempts AS BIGINT)";
pub(super) const FINISH_PIN: &str = "UPDATE pins
     SET status = $2, next_attempt_ms = $3, last_error = $4, lease_until_ms = $5, updated_ms = $6,
         copies = COALESCE($7, copies)
     WHERE cid = $1";
pub(super) const RELEASE_PIN: &str = "UPDATE pins
     SET status = 'queued', lease_until_ms = 0, next_attempt_ms = $2, updated_ms = $2
     WHERE cid = $1 AND status = 'pinning'";
pub(super) const PIN_COUNTS: &str =
    "SELECT status, count(*) FROM pins GROUP BY status ORDER BY status";
pub(super) const DELETE_FILE: &str = "DELETE FROM files WHERE owner = $1 AND cid = $2";
pub(super) const DELETE_OWN_REFS: &str = "DELETE FROM file_refs WHERE added_by = $1 AND cid = $2";
pub(super) const ADD_CANDIDATE: &str = "INSERT INTO gc_candidates (cid, since_ms) VALUES ($1, $2)
     ON CONFLICT (cid) DO UPDATE SET since_ms = excluded.since_ms";
pub(super) const REFERENCES: &str = "SELECT count(*) FROM files WHERE cid = $1";

/// What search indexes for `file`: the words of its name, type and metadata string values.
pub(super) fn search_text(file: &NewFile<'_>) -> String {
    fn strings(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::String(s) => {
                out.push(' ');
                out.push_str(s);
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut text = format!("{} {}", file.name, file.content_type);
    if let Ok(metadata) = serde_json::from_str::<serde_json::Value>(file.metadata) {
        strings(&metadata, &mut text);
    }
    search_words(&text).join(" ")
}

/// `LIKE` pattern matching values that start with `prefix` (wildcards in it escaped).
pub(super) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The words search sees in `text`: lowercase runs of letters and digits (everything else
/// separates words), at most 64 characters each. Both backends index and query these, so
/// `report-v1.pdf` is found by `report`, `v1` or `pdf`, the same way in PostgreSQL and SQLite.
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(64).flat_map(char::to_lowercase).collect())
        .collect()
}

/// `impl FileStore for $store` (which has a `pool` field); search runs the backend's
/// `$search_sql` with the query `$search_query(words)` builds.
macro_rules! file_store {
    ($store:ty, $search_sql:expr, $search_query:path) => {
        #[async_trait::async_trait]
        impl $crate::store::FileStore for $store {
            async fn search(
                &self,
                owner: &str,
                words: &[String],
                type_prefix: Option<&str>,
                limit: i64,
            ) -> Result<Vec<$crate::store::FileRecord>, $crate::store::StoreError> {
                use $crate::store::files as sql;
                let rows: Vec<$crate::store::FileRecord> = sqlx::query_as($search_sql)
                    .bind(owner)
                    .bind($search_query(words))
                    .bind(type_prefix.map(sql::like_prefix))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            }

            async fn add_file(
                &self,
                file: &$crate::store::NewFile<'_>,
            ) -> Result<($crate::store::FileRecord, bool), $crate::store::StoreError> {
                use $crate::store::files as sql;
                let mut tx = self.begin_write().await?;
                sqlx::query($crate::store::gc::WITHDRAW)
                    .bind(file.cid)
                    .execute(&mut *tx)
                    .await?;
                let added = sqlx::query(sql::ADD_CONTENT)
                    .bind(file.cid)
                    .bind(file.size)
                    .bind(file.dag_size)
                    .bind(file.now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let (claims,): (i64,) = sqlx::query_as($crate::store::gc::CLAIMS)
                    .bind(file.cid)
                    .fetch_one(&mut *tx)
                    .await?;
                if claims == 0 {
                    return Err($crate::store::StoreError::Raced(
                        "the content was collected while it was being stored".into(),
                    ));
                }
                sqlx::query(sql::ADD_FILE)
                    .bind(file.owner)
                    .bind(file.cid)
                    .bind(file.name)
                    .bind(file.content_type)
                    .bind(file.now_ms)
                    .bind(file.metadata)
                    .bind(sql::search_text(file))
                    .execute(&mut *tx)
                    .await?;
                let record: $crate::store::FileRecord = sqlx::query_as(sql::FILE)
                    .bind(file.owner)
                    .bind(file.cid)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((record, added == 1))
            }

            async fn file(
                &self,
                owner: &str,
                cid: &str,
            ) -> Result<Option<$crate::store::FileRecord>, $crate::store::StoreError> {
                use $crate::store::files as sql;
                let row: Option<$crate::store::FileRecord> = sqlx::query_as(sql::FILE)
                    .bind(owner)
                    .bind(cid)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row)
            }

            async fn content(
                &self,
                cid: &str,
            ) -> Result<Option<(i64, i64)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::files::CONTENT)
                    .bind(cid)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn files(
                &self,
                owner: &str,
                query: &$crate::store::FileQuery,
            ) -> Result<Vec<$crate::store::FileRecord>, $crate::store::StoreError> {
                use $crate::store::files as sql;
                let (before_ms, before_cid) = query.before.clone().unzip();
                let rows: Vec<$crate::store::FileRecord> = sqlx::query_as(sql::FILES)
                    .bind(owner)
                    .bind(query.type_prefix.as_deref().map(sql::like_prefix))
                    .bind(before_ms)
                    .bind(before_cid)
                    .bind(query.limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows)
            }

            async fn readable_file(
                &self,
                user: &str,
                cid: &str,
            ) -> Result<Option<$crate::store::FileRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::files::READABLE_FILE)
                    .bind(user)
                    .bind(cid)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn attach_file(
                &self,
                document: &str,
                cid: &str,
                user: &str,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::files::ATTACH_FILE)
                    .bind(document)
                    .bind(cid)
                    .bind(user)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn detach_file(
                &self,
                document: &str,
                cid: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::files::DETACH_FILE)
                    .bind(document)
                    .bind(cid)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn document_files(
                &self,
                document: &str,
            ) -> Result<Vec<$crate::store::FileRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::files::DOCUMENT_FILES)
                    .bind(document)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn create_upload(
                &self,
                upload: &$crate::store::UploadRecord,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::files::CREATE_UPLOAD)
                    .bind(&upload.id)
                    .bind(&upload.owner)
                    .bind(&upload.cid)
                    .bind(upload.size)
                    .bind(&upload.name)
                    .bind(&upload.content_type)
                    .bind(&upload.metadata)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn upload(
                &self,
                owner: &str,
                id: &str,
            ) -> Result<Option<$crate::store::UploadRecord>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::files::UPLOAD)
                    .bind(owner)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn set_upload_received(
                &self,
                id: &str,
                from: i64,
                to: i64,
                now_ms: i64,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::files::SET_UPLOAD_RECEIVED)
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_upload(&self, id: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::files::DELETE_UPLOAD)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn enqueue_pins(
                &self,
                cid: Option<&str>,
                now_ms: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::files as sql;
                let query = match cid {
                    Some(cid) => sqlx::query(sql::ENQUEUE_PIN).bind(cid).bind(now_ms),
                    None => sqlx::query(sql::ENQUEUE_ALL_PINS).bind(now_ms),
                };
                Ok(query.execute(&self.pool).await?.rows_affected())
            }

            async fn claim_pins(
                &self,
                now_ms: i64,
                lease_ms: i64,
                limit: i64,
            ) -> Result<Vec<$crate::store::ClaimedPin>, $crate::store::StoreError> {
                use $crate::store::files as sql;
                let claimed: Vec<(String, i64)> = sqlx::query_as(sql::CLAIM_PINS)
                    .bind(now_ms)
                    .bind(lease_ms)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let mut pins = Vec::with_capacity(claimed.len());
                for (cid, attempts) in claimed {
                    let (size, _) = self.content(&cid).await?.unwrap_or((0, 0));
                    pins.push($crate::store::ClaimedPin {
                        cid,
                        size,
                        attempts,
                    });
                }
                Ok(pins)
            }

            async fn finish_pin(
                &self,
                cid: &str,
                outcome: &$crate::store::PinOutcome,
                copies: Option<&str>,
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::PinOutcome;
                // A partial pin stays `pinning` with a lease that ends when it is due again,
                // so a worker (on any replica) takes it up then.
                let (status, next, lease, error) = match outcome {
                    PinOutcome::Pinned => ("pinned", 0, 0, None),
                    PinOutcome::Retry {
                        next_attempt_ms,
                        error,
                    } => ("queued", *next_attempt_ms, 0, Some(error.as_str())),
                    PinOutcome::Partial {
                        next_attempt_ms,
                        error,
                    } => (
                        "pinning",
                        *next_attempt_ms,
                        *next_attempt_ms,
                        Some(error.as_str()),
                    ),
                    PinOutcome::Failed { error } => ("failed", 0, 0, Some(error.as_str())),
                };
                sqlx::query($crate::store::files::FINISH_PIN)
                    .bind(cid)
                    .bind(status)
                    .bind(next)
                    .bind(error)
                    .bind(lease)
                    .bind(now_ms)
                    .bind(copies)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn pin_counts(&self) -> Result<Vec<(String, i64)>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::files::PIN_COUNTS)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn release_pins(
                &self,
                cids: &[String],
                now_ms: i64,
            ) -> Result<(), $crate::store::StoreError> {
                for cid in cids {
                    sqlx::query($crate::store::files::RELEASE_PIN)
                        .bind(cid)
                        .bind(now_ms)
                        .execute(&self.pool)
                        .await?;
                }
                Ok(())
            }

            async fn delete_file(
                &self,
                owner: &str,
                cid: &str,
                now_ms: i64,
            ) -> Result<(bool, i64), $crate::store::StoreError> {
                use $crate::store::files as sql;
                let mut tx = self.begin_write().await?;
                let removed = sqlx::query(sql::DELETE_FILE)
                    .bind(owner)
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(sql::DELETE_OWN_REFS)
                    .bind(owner)
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?;
                let (left,): (i64,) = sqlx::query_as(sql::REFERENCES)
                    .bind(cid)
                    .fetch_one(&mut *tx)
                    .await?;
                if removed == 1 && left == 0 {
                    sqlx::query(sql::ADD_CANDIDATE)
                        .bind(cid)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok((removed == 1, left))
            }
        }
    };
}
pub(super) use file_store;
