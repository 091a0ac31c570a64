//! `cairn backup --to DIR`: a consistent online backup (layout: [`super::manifest`]).
//!
//! 1. A maintenance lease is taken in the database: from then on no garbage collection, on
//!    any replica, deletes a block (see `store::gc`), so every block the snapshot names stays
//!    until it is copied. The lease expires by itself if the backup dies, and is renewed
//!    while it runs.
//! 2. The database is read as of one moment: PostgreSQL in one `REPEATABLE READ` read-only
//!    transaction, every table streamed out with binary `COPY` into a new SQLite file with
//!    Cairn's schema; SQLite with `VACUUM INTO` (a consistent copy taken in one read
//!    transaction while the server writes on).
//! 3. The bytes of open upload sessions are copied up to what their rows say was received
//!    (those bytes never change); a session whose upload ended meanwhile is left out.
//! 4. The blocks of every stored content are copied, each checked against its name as it is
//!    read; blocks already in `DIR` from an earlier backup are kept, so a second backup copies
//!    only new blocks. One `syncfs` makes it all durable, then the manifest is written.
//!
//! A backup that fails leaves the previous one in `DIR` intact.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection};

use super::manifest::{self, Blocks, Manifest, Run, Upload};
use super::progress::{Progress, Show, Unit};
use super::rows;
use super::{Db, OpsError, blocks};
use crate::clock::now_ms;
use crate::config::StorageArgs;
use crate::store::{PostgresStore, SqliteStore, Store};

/// How long a backup's lease lasts without renewal, and how often it is renewed.
const LEASE: Duration = Duration::from_secs(300);
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// Takes a backup of the deployment `storage` names into `to`.
pub async fn backup(storage: &StorageArgs, to: &Path, show: Show) -> Result<Manifest, OpsError> {
    let started = Instant::now();
    let db = Db::open(storage).await?;
    db.require_current_schema().await?;
    std::fs::create_dir_all(to).map_err(OpsError::io(to.display().to_string()))?;
    let _lock = lock(to)?;
    let previous = manifest::read(to)?;
    if previous.is_none() && holds_other_files(to)? {
        return Err(OpsError::Refused(format!(
            "{} is not empty and holds no Cairn backup: choose an empty or new directory",
            to.display()
        )));
    }
    let generation = previous.as_ref().map_or(1, |m| m.generation + 1);
    let lease = Lease::take(db.shared()).await?;
    let result = take(&db, storage, to, generation, show).await;
    let lost = lease.release(db.store()).await;
    let (mut manifest, tmp_db) = result?;
    if lost {
        let _ = std::fs::remove_file(&tmp_db);
        return Err(OpsError::Invalid(
            "the backup's lease expired while it ran (was it paused?): garbage collection may \
             have removed blocks meanwhile; run the backup again"
                .into(),
        ));
    }
    let db_name = format!("database-{generation}.sqlite3");
    std::fs::rename(&tmp_db, to.join(&db_name)).map_err(OpsError::io(&db_name))?;
    blocks::sync_fs(to).map_err(OpsError::io("syncing the backup"))?;
    manifest.database = manifest::part(to, &db_name)?;
    manifest.run.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    manifest::write(to, &manifest)?;
    prune(to, &manifest)?;
    Ok(manifest)
}

/// Everything but the final renames: the manifest (its database part still to be filled
/// in) and the database file's temporary path.
async fn take(
    db: &Db,
    storage: &StorageArgs,
    to: &Path,
    generation: u64,
    show: Show,
) -> Result<(Manifest, PathBuf), OpsError> {
    let tmp_db = to.join(format!("database-{generation}.sqlite3.tmp"));
    let _ = std::fs::remove_file(&tmp_db);
    let created_at = super::now_rfc3339();
    match db {
        Db::Postgres(store) => export_postgres(store, &tmp_db, show).await?,
        Db::Sqlite { store, .. } => vacuum_into(store, &tmp_db).await?,
    }
    let backup = open_for_writing(&tmp_db).await?;
    // Our own lease (SQLite copies it) is not part of the backup.
    sqlx::query("DELETE FROM maintenance_leases")
        .execute(&backup)
        .await?;
    let (uploads, ended) = copy_uploads(&backup, storage, to, generation).await?;
    let digests: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT b.digest FROM content_blocks b
         WHERE EXISTS (SELECT 1 FROM file_contents c WHERE c.cid = b.content_cid)
         ORDER BY b.digest",
    )
    .fetch_all(&backup)
    .await?;
    let digests: Vec<String> = digests.into_iter().map(|(d,)| d).collect();
    let tables = rows::count_sqlite(&backup, false).await?;
    let (schema_version,): (i64,) =
        sqlx::query_as("SELECT COALESCE(max(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&backup)
            .await?;
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&backup)
        .await?;
    backup.close().await;

    let (from, dest) = (storage.blocks_dir(), to.join("blocks"));
    let total: u64 = digests
        .iter()
        .filter_map(|d| std::fs::metadata(manifest::block_path(&from, d)).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::start(show, "blocks", total, Unit::Bytes);
    let list = digests.clone();
    let (sizes, copied) = tokio::task::spawn_blocking(move || {
        let copied = blocks::copy_all(&from, &dest, &list, true, &progress);
        progress.finish();
        copied
    })
    .await
    .map_err(|e| OpsError::Invalid(format!("the block copy stopped: {e}")))?
    .map_err(|problems| {
        OpsError::Invalid(format!(
            "{} block(s) cannot be copied; nothing was replaced:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    })?;
    let index_name = format!("blocks-{generation}.index");
    let mut index = String::new();
    for (digest, size) in digests.iter().zip(&sizes) {
        index.push_str(&format!("{digest} {size}\n"));
    }
    std::fs::write(to.join(&index_name), index).map_err(OpsError::io(&index_name))?;
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        generation,
        created_at,
        cairn_version: env!("CARGO_PKG_VERSION").into(),
        source: db.backend().into(),
        schema_version,
        database: manifest::Part {
            path: String::new(),
            bytes: 0,
            sha256: String::new(),
        },
        tables,
        blocks: Blocks {
            index: manifest::part(to, &index_name)?,
            count: digests.len() as u64,
            bytes: sizes.iter().sum(),
        },
        uploads,
        run: Run {
            blocks_copied: copied.blocks,
            bytes_copied: copied.bytes,
            blocks_reused: copied.reused,
            uploads_ended: ended,
            duration_ms: 0,
        },
    };
    Ok((manifest, tmp_db))
}

/// A new SQLite file with Cairn's schema, set up for one fast bulk load (no journal, no
/// fsync until the end: it is a temporary file until the backup is complete).
async fn create(path: &Path) -> Result<SqlitePool, OpsError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .foreign_keys(false)
        .pragma("cache_size", "-262144");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    crate::store::schema::SQLITE
        .run(&pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(pool)
}

async fn open_for_writing(path: &Path) -> Result<SqlitePool, OpsError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .foreign_keys(false);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// Every table of a PostgreSQL snapshot into a new SQLite file at `path`.
async fn export_postgres(store: &PostgresStore, path: &Path, show: Show) -> Result<(), OpsError> {
    let sqlite = create(path).await?;
    let mut pg = store.pool().acquire().await?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *pg)
        .await?;
    let total = rows::count_postgres(&mut pg).await?.values().sum();
    let progress = Progress::start(show, "database", total, Unit::Items);
    let mut out = sqlite.acquire().await?;
    let mut tx = out.begin().await?;
    rows::postgres_to_sqlite(&mut pg, &mut tx, &progress).await?;
    tx.commit().await?;
    progress.finish();
    sqlx::query("COMMIT").execute(&mut *pg).await?;
    drop(out);
    sqlite.close().await;
    Ok(())
}

/// `VACUUM INTO`: a consistent copy of the live SQLite database.
async fn vacuum_into(store: &SqliteStore, path: &Path) -> Result<(), OpsError> {
    let target = path.display().to_string().replace('\'', "''");
    sqlx::query(AssertSqlSafe(format!("VACUUM INTO '{target}'")))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Copies the received bytes of every upload session in `backup`; removes the sessions whose
/// upload ended meanwhile (their bytes are gone). Returns the parts and how many ended.
async fn copy_uploads(
    backup: &SqlitePool,
    storage: &StorageArgs,
    to: &Path,
    generation: u64,
) -> Result<(Vec<Upload>, u64), OpsError> {
    let sessions: Vec<(String, i64)> = sqlx::query_as("SELECT id, received FROM uploads")
        .fetch_all(backup)
        .await?;
    let dir = format!("uploads/{generation}");
    std::fs::create_dir_all(to.join(&dir)).map_err(OpsError::io(&dir))?;
    let (mut parts, mut ended) = (Vec::new(), 0);
    for (id, received) in sessions {
        let path = format!("{dir}/{id}");
        let source = storage.uploads_dir().join(&id);
        let received = u64::try_from(received).unwrap_or(0);
        match copy_prefix(&source, &to.join(&path), received) {
            Ok(true) => parts.push(Upload {
                id,
                part: manifest::part(to, &path)?,
            }),
            Ok(false) => {
                sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(&id)
                    .execute(backup)
                    .await?;
                ended += 1;
            }
            Err(e) => return Err(OpsError::io(format!("upload {id}"))(e)),
        }
    }
    Ok((parts, ended))
}

/// Copies the first `len` bytes of `from` to `to`; `false` if `from` is gone or shorter.
fn copy_prefix(from: &Path, to: &Path, len: u64) -> std::io::Result<bool> {
    let file = match std::fs::File::open(from) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() < len {
        return Ok(false);
    }
    let mut out = std::fs::File::create(to)?;
    let copied = std::io::copy(&mut file.take(len), &mut out)?;
    out.flush()?;
    Ok(copied == len)
}

/// Holds `DIR/.lock`, so two backups never write one directory at once.
fn lock(dir: &Path) -> Result<std::fs::File, OpsError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(OpsError::io(".lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(OpsError::Refused(format!(
            "another backup is writing into {}",
            dir.display()
        ))),
    }
}

fn holds_other_files(dir: &Path) -> Result<bool, OpsError> {
    let entries = std::fs::read_dir(dir).map_err(OpsError::io(dir.display().to_string()))?;
    Ok(entries
        .filter_map(Result::ok)
        .any(|e| e.file_name() != ".lock"))
}

/// Removes what no longer belongs to the backup: earlier generations' database, index and
/// upload parts, temporary files, and blocks the new index does not list.
fn prune(dir: &Path, manifest: &Manifest) -> Result<(), OpsError> {
    let keep: HashSet<&str> = manifest.parts().iter().map(|p| p.path.as_str()).collect();
    let entries = std::fs::read_dir(dir).map_err(OpsError::io("pruning"))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = (name.starts_with("database-") || name.starts_with("blocks-"))
            && !keep.contains(name.as_str());
        if old || name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let current = format!("{}", manifest.generation);
    if let Ok(uploads) = std::fs::read_dir(dir.join("uploads")) {
        for entry in uploads.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy() != current {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let listed: HashSet<String> = manifest::read_index(&dir.join(&manifest.blocks.index.path))
        .map_err(OpsError::Invalid)?
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    let store = dir.join("blocks");
    for (digest, _) in blocks::list(&store).map_err(OpsError::io("listing blocks"))? {
        if !listed.contains(&digest) {
            let _ = std::fs::remove_file(manifest::block_path(&store, &digest));
        }
    }
    Ok(())
}

/// A maintenance lease, renewed in the background until released.
struct Lease {
    id: String,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    async fn take(store: Arc<dyn Store>) -> Result<Self, OpsError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| OpsError::Invalid(format!("no randomness: {e}")))?;
        let id = format!("backup-{}", hex::encode(bytes));
        let now = now_ms();
        store
            .take_lease(&id, &super::holder(), now, now + crate::clock::ms(LEASE))
            .await?;
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (id, lost) = (id.clone(), lost.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    let now = now_ms();
                    match store
                        .renew_lease(&id, now, now + crate::clock::ms(LEASE))
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        // Tried again next time; the lease lasts many renewals.
                        Err(e) => tracing::warn!(error = %e, "cannot renew the backup's lease"),
                    }
                }
            })
        };
        Ok(Self { id, lost, renewer })
    }

    /// Gives the lease up; whether it was lost (it expired before a renewal) while held.
    async fn release(self, store: &dyn Store) -> bool {
        self.renewer.abort();
        let now = now_ms();
        let renewed = store
            .renew_lease(&self.id, now, now + crate::clock::ms(LEASE))
            .await
            .unwrap_or(false);
        let _ = store.release_lease(&self.id).await;
        self.lost.load(Ordering::Relaxed) || !renewed
    }
}
