//! `cairn backup --to DIR`: a consistent online backup (layout: [`super::manifest`]).
//!
//! 1. A maintenance lease is taken in the database: from then on no garbage collection, on
//!    any replica, deletes a block (see `store::gc`), so every block the snapshot names stays
//!    until it is copied. The lease expires by itself if the backup dies, and is renewed
//!    while it runs.
//! 2. The database is read as of one moment into a SQLite file with Cairn's schema
//!    ([`database`]): PostgreSQL in one `REPEATABLE READ` read-only transaction with binary
//!    `COPY` (starting from the earlier backup's file when there is one: only change rows it
//!    lacks are read), SQLite with `VACUUM INTO`.
//! 3. The bytes of open upload sessions are copied up to what their rows say was received
//!    (those bytes never change); a session whose upload ended meanwhile is left out.
//! 4. The blocks of every stored content are copied, each checked against its name as it is
//!    read; blocks already in `DIR` from an earlier backup are kept, so a second backup copies
//!    only new blocks. One `syncfs` makes it all durable, then the manifest is written.
//!
//! A backup that fails leaves the previous one in `DIR` intact.

pub(crate) mod database;
mod lease;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::SqlitePool;

use self::lease::Lease;
use super::manifest::{self, Blocks, Manifest, Run, Upload};
use super::progress::{Progress, Show, Unit};
use super::rows;
use super::{Db, OpsError, blocks};
use crate::config::StorageArgs;

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
    let result = take(&db, storage, to, previous.as_ref(), show).await;
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
    manifest.run.duration_ms = elapsed_ms(started);
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
    previous: Option<&Manifest>,
    show: Show,
) -> Result<(Manifest, PathBuf), OpsError> {
    let generation = previous.map_or(1, |m| m.generation + 1);
    let tmp_db = to.join(format!("database-{generation}.sqlite3.tmp"));
    let _ = std::fs::remove_file(&tmp_db);
    let created_at = super::now_rfc3339();
    let started = Instant::now();
    let mut database_from = None;
    let database_id = match db {
        Db::Postgres(store) => {
            let identity = database::postgres_identity(store).await?;
            let earlier = database::reusable(to, previous, &identity);
            let reused = match earlier {
                Some(path) => {
                    database::export_postgres_incremental(store, &to.join(path), &tmp_db, show)
                        .await?
                }
                None => false,
            };
            if reused {
                database_from = previous.map(|m| m.generation);
            } else {
                let _ = std::fs::remove_file(&tmp_db);
                database::export_postgres(store, &tmp_db, show).await?;
            }
            identity
        }
        Db::Sqlite { store, path } => {
            database::vacuum_into(store, &tmp_db).await?;
            format!("sqlite:{}", path.display())
        }
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "backup: database exported"
    );
    let backup = database::open_for_writing(&tmp_db, false).await?;
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
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "backup: uploads and digests"
    );
    let tables = rows::count_sqlite(&backup, false).await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "backup: counted");
    let (schema_version,): (i64,) =
        sqlx::query_as("SELECT COALESCE(max(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&backup)
            .await?;
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&backup)
        .await?;
    backup.close().await;
    let database_ms = elapsed_ms(started);
    tracing::debug!(database_ms, "backup: database copied");

    let started = Instant::now();
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
            "{} block(s) cannot be copied (`cairn verify --repair` fetches blocks back from \
             Kubo); the earlier backup is unchanged:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    })?;
    let blocks_ms = elapsed_ms(started);
    tracing::debug!(blocks_ms, copied = copied.blocks, "backup: blocks copied");
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
        database_id,
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
            database_ms,
            blocks_ms,
            database_from,
        },
    };
    Ok((manifest, tmp_db))
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
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
